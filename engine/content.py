"""Marketer-written message content, rendered in a sandbox with autoescaping."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import html2text
from jinja2 import ChainableUndefined, Template, TemplateError, nodes
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


@functools.lru_cache(maxsize=2048)
def _compiled(template: str, html: bool) -> Template:
    """Compiling is most of the cost of a render; a care model's templates are few and rendered often."""
    return (_HTML if html else _TEXT).from_string(template)


def render(template: str, context: dict[str, Any], where: str, html: bool = True) -> str:
    """HTML bodies escape lead data; plain text (subjects, social posts) keeps it as typed, on one line."""
    try:
        if not html:
            return " ".join(_compiled(template, False).render(context).split())
        return _compiled(template, True).render(context)
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        raise ContentError(f"{where}: {exc}") from exc


# What a template is tried against at validation: every built-in field, so that a template that validates
# never fails at send time for a reason validation could have seen.
SAMPLE = LeadState(id="sample-lead", email="sample@example.com", stage="prospect", fit=10, engagement=20,
                   attributes={"first_name": "Sam", "last_name": "Sample", "company": "Sample Co", "country": "DE"})


@functools.lru_cache(maxsize=2048)
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


@dataclass(frozen=True)
class Preview:
    """A message as one lead would see it, and what is wrong with it, by field."""

    subject: str = ""
    html: str = ""
    text: str = ""
    problems: list[str] = field(default_factory=list)


def fields_used(template: str) -> set[str]:
    """The lead fields a template reads (`lead.company`, `lead['company']`) without a `| default(…)`."""
    try:
        tree = _HTML.parse(template)
    except TemplateError:
        return set()

    def field_of(node: nodes.Node) -> str | None:
        if isinstance(node, nodes.Getattr | nodes.Getitem) and isinstance(node.node, nodes.Name) \
                and node.node.name == "lead":
            if isinstance(node, nodes.Getattr):
                return node.attr
            return str(node.arg.value) if isinstance(node.arg, nodes.Const) else None
        return None

    used = {f for n in tree.find_all((nodes.Getattr, nodes.Getitem)) if (f := field_of(n))}
    guarded = {f for n in tree.find_all(nodes.Filter) if n.name in ("default", "d") and n.node is not None
               and (f := field_of(n.node))}
    return used - guarded


def preview(subject: str, body: str, lead: LeadState, html: bool = True) -> Preview:
    """Renders subject and body for a lead in the sandbox that renders real sends; a field this lead lacks renders
    empty, and is named so the marketer can add a default."""
    context = lead_context(lead)
    problems: list[str] = []
    rendered: dict[str, str] = {}
    for name, template, as_html in (("subject", subject, False), ("body", body, html)):
        trouble = check_template(template) if template else None
        if trouble and not trouble.startswith("fails for a sample lead"):
            problems.append(f"{name}: {trouble}")
            continue
        try:
            rendered[name] = render(template, context, name, html=as_html)
        except ContentError as exc:
            problems.append(f"{name}: {exc.__cause__ or exc}")
        missing = sorted(fields_used(template) - set(context["lead"]))
        problems += [f"{name}: lead.{f} is not set for {lead.email or lead.id}, so it renders empty "
                     f"(add a fallback: {{{{ lead.{f} | default('…') }}}})" for f in missing]
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.images_to_alt = True
    body_out = rendered.get("body", "")
    text = converter.handle(body_out).strip() + "\n" if html else body_out
    return Preview(rendered.get("subject", ""), body_out if html else "", text, problems)
