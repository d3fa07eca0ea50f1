"""Text from telemetry, made safe to show on a terminal.

Skill names, tool names, errors and ids come from the skills that were
observed, so they are shown as they are: never read as rich markup, and with
control characters (an ANSI escape could repaint the screen) spelled out.
"""

from __future__ import annotations

import re

from rich.text import Text

_LAYOUT = str.maketrans({"\n": " ", "\r": " ", "\t": " "})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def plain(value: object, style: str = "") -> Text:
    """``value`` as literal text: line breaks become spaces, other control characters \\xNN."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value).translate(_LAYOUT))
    return Text(text, style=style)
