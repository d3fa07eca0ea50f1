"""`waza report` opened in headless Chromium, as a reader would: it draws, it opens, it runs nothing
from telemetry and asks the network for nothing."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image
from playwright.sync_api import Browser, sync_playwright

from waza.cli import main
from waza.sample import write_sample
from waza.telemetry import RuntimeCollector

HOSTILE = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'
# How the machines run Chromium headless: no sandbox as root, nothing fetched in the background.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]  # fmt: skip


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of sample telemetry plus one failed session whose prompt, tool and error are hostile."""
    folder = tmp_path_factory.mktemp("report")
    write_sample(folder / "telemetry", 2000, seed=4)
    with RuntimeCollector(folder / "telemetry", redact=False) as collector:
        with collector.session(HOSTILE, {"user_id": "u1"}, skill_name="azure-deploy") as session:
            with session.tool("az</td><b>", args=["deploy", HOSTILE]):
                pass
            session.end(output="", success=False, error=f"Boom {HOSTILE}")
    out = folder / "report.html"
    result = CliRunner().invoke(main, ["report", str(folder / "telemetry"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Chromium is missing: `make test` installs it (scripts/ensure-chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def test_the_report_draws_opens_timelines_and_runs_nothing_from_telemetry(
    report: Path, browser: Browser
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    page.wait_for_selector("#chart-daily canvas")
    page.wait_for_selector("#chart-durations canvas")

    # The charts are drawn: a screenshot of each holds coloured bars, not a blank or grey box.
    for chart in ("#chart-daily", "#chart-durations", "#chart-skills"):
        picture = Image.open(io.BytesIO(page.locator(chart).screenshot())).convert("RGB")
        colours = picture.getcolors(maxcolors=1 << 20)
        assert len(colours) > 20, chart
        bars = sum(n for n, rgb in colours if max(rgb) - min(rgb) > 60)
        assert bars > 500, (chart, bars)

    # The hostile session is listed as text, with its markup visible and inert.
    row = page.locator("tr:has(button[data-session])", has_text="window.__pwned = 1")
    assert HOSTILE.split("<img")[0] in row.inner_text()
    assert page.evaluate("window.__pwned") is None

    # Its timeline opens, with its events, the hostile values as text.
    row.get_by_role("button", name="timeline").click()
    timeline = page.locator("#timeline")
    timeline.wait_for(state="visible")
    text = timeline.inner_text()
    assert "session.started" in text and "tool.called" in text and "session.ended" in text
    assert "az</td><b>" in text and f"Boom {HOSTILE}" in text
    assert page.evaluate("window.__pwned") is None
    # The slowest session's timeline opens too.
    page.locator("button[data-session]").first.click()
    assert "session.started" in timeline.inner_text()

    assert problems == []
    assert requests == [report.as_uri()]  # the page itself, and nothing else: no image "x", no CDN
    page.close()


def test_the_report_is_one_offline_file(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    markup = html.split("</head>\n<body>", 1)[1].split('<script type="application/json"')[0]
    assert not re.search(r"<[^>]*\b(src|href|action)\s*=", markup)  # no tag that loads anything
    assert "<script src" not in html and "<link" not in html
    assert HOSTILE not in html  # escaped everywhere it appears
    assert report.stat().st_size < 5_000_000
