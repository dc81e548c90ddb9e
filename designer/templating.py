from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2_fragments.fastapi import Jinja2Blocks

# Jinja2Blocks renders a whole page, or just the named blocks of it for an htmx request.
TEMPLATES = Jinja2Blocks(directory=str(Path(__file__).resolve().parent.parent / "templates"))


def _timestamp(value: int) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M")


TEMPLATES.env.filters["timestamp"] = _timestamp
