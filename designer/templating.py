from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import yaml
from fastapi import Request
from jinja2_fragments.fastapi import Jinja2Blocks
from markupsafe import Markup, escape

from designer.assets import TEMPLATES_DIR
from engine.conditions import describe
from engine.durations import format_duration

# Jinja2Blocks renders a whole page, or just the named blocks of it for an htmx request.
TEMPLATES = Jinja2Blocks(directory=str(TEMPLATES_DIR))


def _timestamp(value: int) -> str:
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M")


def _who(request: Request) -> Any:
    """The signed-in principal, for pages that show or hide what a role may do."""
    return getattr(request.state, "principal", None)


def _csrf_field(request: Request) -> Markup:
    """For forms posted without htmx (htmx sends the token as a header, from the page's meta tag)."""
    who = _who(request)
    return Markup(f'<input type="hidden" name="csrf" value="{escape(who.csrf)}">') if who and who.csrf else Markup()


def to_yaml(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True)


TEMPLATES.env.filters["timestamp"] = _timestamp
TEMPLATES.env.filters["to_yaml"] = to_yaml
TEMPLATES.env.globals.update(who=_who, csrf_field=_csrf_field, describe=describe, format_duration=format_duration)
