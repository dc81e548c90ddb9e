from __future__ import annotations

from datetime import UTC, datetime

from jinja2_fragments.fastapi import Jinja2Blocks

from designer.assets import TEMPLATES_DIR

# Jinja2Blocks renders a whole page, or just the named blocks of it for an htmx request.
TEMPLATES = Jinja2Blocks(directory=str(TEMPLATES_DIR))


def _timestamp(value: int) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M")


TEMPLATES.env.filters["timestamp"] = _timestamp
