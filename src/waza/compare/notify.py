"""Telling people: a JSON message POSTed to a webhook, and what was told, kept between runs.

The message's ``text`` is what Slack's and Teams' incoming webhooks show; the
findings ride along for other receivers. Delivery is retried on connection
errors, 429 and 5xx, with a bounded wait; a 4xx other than 429 is final.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from waza.compare.alert import Finding
from waza.errors import WazaError
from waza.store.atomic import replace_text

ATTEMPTS = 4
FIRST_PAUSE_S = 0.5
TIMEOUT_S = 10.0


class DeliveryError(WazaError):
    """The webhook did not take the message."""


def message(fired: list[Finding], resolved: list[str]) -> dict[str, Any]:
    lines = [f"ALERT {finding.message}" for finding in fired]
    lines += [f"RESOLVED {key.replace('|', ': ')} is healthy again" for key in resolved]
    return {
        "text": "\n".join(lines),
        "alerts": [{"skill": f.skill, "check": f.check, "message": f.message} for f in fired],
        "resolved": [dict(zip(("skill", "check"), key.split("|", 1), strict=True)) for key in resolved],
    }


def post(url: str, body: dict[str, Any]) -> None:
    """POST ``body`` as JSON to ``url``, retrying what may pass on a second try."""
    import httpx

    pause, last = FIRST_PAUSE_S, ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = httpx.post(url, json=body, timeout=TIMEOUT_S)
        except httpx.HTTPError as error:
            last = f"{type(error).__name__}: {error}"
        else:
            if response.is_success:
                return
            last = f"HTTP {response.status_code}"
            if response.status_code != 429 and response.status_code < 500:
                break
        if attempt < ATTEMPTS:
            time.sleep(pause)
            pause *= 2
    raise DeliveryError(f"the webhook did not take the alert ({last}); it is sent again on the next run")


def load_state(path: Path) -> dict[str, Any]:
    """What was firing at the last run: finding key -> {since, message}."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise WazaError(f"cannot read alert state {path}: {error}; remove it to start afresh") from None
    firing = state.get("firing") if isinstance(state, dict) else None
    if not isinstance(firing, dict):
        raise WazaError(f"{path} is not an alert state file; remove it to start afresh")
    return firing


def save_state(path: Path, firing: dict[str, Any]) -> None:
    """Replace the state file atomically: a crash leaves the old state or the new, never half."""
    replace_text(path, json.dumps({"firing": firing}, indent=2))
