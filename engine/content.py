"""Marketer-written message content, rendered in a sandbox with autoescaping."""

from __future__ import annotations

from typing import Any

from jinja2 import ChainableUndefined, TemplateError, nodes
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


# What a template is tried against at validation: every built-in field, so that a template that validates
# never fails at send time for a reason validation could have seen.
SAMPLE = LeadState(id="sample-lead", email="sample@example.com", stage="prospect", fit=10, engagement=20,
                   attributes={"first_name": "Sam", "last_name": "Sample", "company": "Sample Co", "country": "DE"})


def check_template(template: str) -> str | None:
    """Why the template cannot be sent, or None: syntax, an unknown filter or test (even in a branch that
    rarely runs), or an error when rendered for a sample lead, in the same sandbox that renders real sends."""
    try:
        tree = _HTML.parse(template)
        unknown = sorted({f"filter '{n.name}'" for n in tree.find_all(nodes.Filter) if n.name not in _HTML.filters}
                         | {f"test '{n.name}'" for n in tree.find_all(nodes.Test) if n.name not in _HTML.tests})
        if unknown:
            return f"no {', no '.join(unknown)} (filters include default, upper, lower, title, trim, truncate)"
        render(template, lead_context(SAMPLE), "sample lead")
    except ContentError as exc:
        return f"fails for a sample lead: {exc.__cause__ or exc}"
    except TemplateError as exc:
        return str(exc)
    return None
