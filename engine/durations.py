"""Human durations ("3d", "12h", "1w2d", "P3DT4H") and clock times ("09:30")."""

from __future__ import annotations

import re
from datetime import time

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SHORT = re.compile(r"^(?:\s*(\d+)\s*([smhdw])\s*)+$")
_SHORT_PART = re.compile(r"(\d+)\s*([smhdw])")
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


_FORMS = "use forms like '3d', '12h', '90m', '1w2d' or 'P3DT4H'"


def parse_duration(text: str | int | float) -> int:
    """Seconds in a duration; raises ValueError with the accepted forms when it can't read one."""
    if isinstance(text, bool):
        raise ValueError(f"cannot read duration {text!r}: {_FORMS}")
    if isinstance(text, int | float):
        if text <= 0:
            raise ValueError(f"duration {text!r} must be longer than zero")
        return int(text)
    value = text.strip()
    seconds: int | None = None
    if _SHORT.match(value.lower()):
        seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _SHORT_PART.findall(value.lower()))
    else:
        iso = _ISO.match(value.upper())
        if iso and any(iso.groups()):
            w, d, h, m, s = (int(g or 0) for g in iso.groups())
            seconds = (((w * 7 + d) * 24 + h) * 60 + m) * 60 + s
    if seconds is None:
        raise ValueError(f"cannot read duration {text!r}: {_FORMS}")
    if seconds <= 0:
        raise ValueError(f"duration {text!r} must be longer than zero")
    return seconds


def parse_clock(text: str) -> time:
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"cannot read time of day {text!r}: use 24-hour 'HH:MM', e.g. '09:30'")
    return time(int(match.group(1)), int(match.group(2)))


def format_duration(seconds: int) -> str:
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"
