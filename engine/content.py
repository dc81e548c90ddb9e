"""Marketer-written message content, rendered in a sandbox with autoescaping."""

from __future__ import annotations

from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from engine.lead import LeadState

# A lead without a field renders it empty (marketers add `| default('there')`), rather than failing the send.
_HTML = SandboxedEnvironment(autoescape=True, undefined=ChainableUndefined)
_TEXT = SandboxedEnvironment(autoescape=False, undefined=ChainableUndefined)


class ContentError(ValueError):
    pass


def lead_context(lead: LeadState) -> dict[str, Any]:
    return {"lead": {"id": lead.id, "email": lead.email, "stage": lead.stage, **lead.attributes},
            "scores": {"fit": lead.fit, "engagement": lead.engagement, "total": lead.total}}


def render(template: str, context: dict[str, Any], where: str, html: bool = True) -> str:
    """HTML bodies escape lead data; plain text (subjects, social posts) keeps it as typed, on one line."""
    try:
        if not html:
            return " ".join(_TEXT.from_string(template).render(context).split())
        return _HTML.from_string(template).render(context)
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise ContentError(f"{where}: {exc}") from exc


def check_template(template: str) -> str | None:
    try:
        _HTML.parse(template)
    except TemplateError as exc:
        return str(exc)
    return None
