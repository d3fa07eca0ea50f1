// Draws the charts and opens session timelines. Everything from telemetry reaches the page
// through textContent, never as markup.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("waza-data").textContent);
  for (const [target, item] of Object.entries(data.charts)) {
    Bokeh.embed.embed_item(item, target);
  }

  const panel = document.getElementById("timeline");
  const facts = document.getElementById("timeline-facts");
  const rows = panel.querySelector("tbody");
  const more = document.getElementById("timeline-more");

  function add(parent, tag, text, className) {
    const element = document.createElement(tag);
    if (text !== null && text !== undefined) element.textContent = String(text);
    if (className) element.className = className;
    parent.appendChild(element);
    return element;
  }

  function took(ms) {
    if (ms === null || ms === undefined) return "";
    return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
  }

  function show(session) {
    panel.hidden = false;
    panel.querySelector("h2").textContent = "Session " + session.session_id;
    facts.replaceChildren();
    const outcome = session.success === null ? "did not end" : session.success ? "succeeded" : "failed";
    const shown = [["skill", session.skill], ["outcome", outcome], ["duration", took(session.duration_ms)],
                   ["prompt", session.prompt], ["output", session.output], ["error", session.error]];
    for (const [name, value] of shown) {
      if (value === null || value === undefined || value === "") continue;
      add(facts, "dt", name);
      add(facts, "dd", value);
    }
    rows.replaceChildren();
    const end = Math.max(1, session.duration_ms || 0, ...session.events.map((e) => e.at_ms));
    for (const event of session.events) {
      const row = add(rows, "tr", null, event.failed ? "failed" : "");
      add(row, "td", "+" + took(event.at_ms));
      add(row, "td", event.type);
      add(row, "td", event.name);
      add(row, "td", took(event.duration_ms));
      const bar = add(add(add(row, "td"), "div", null, "track"), "div", null, "bar");
      const length = event.duration_ms || 0;
      const start = Math.max(0, event.at_ms - (event.type.endsWith("completed") || event.type.endsWith("response") ? length : 0));
      bar.style.left = (100 * start / end).toFixed(2) + "%";
      bar.style.width = (100 * length / end).toFixed(2) + "%";
      add(row, "td", event.text);
    }
    more.textContent = session.events_left_out ? session.events_left_out + " later events left out" : "";
    panel.scrollIntoView();
  }

  for (const button of document.querySelectorAll("button[data-session]")) {
    button.addEventListener("click", () => show(data.timelines[Number(button.dataset.session)]));
  }
})();
