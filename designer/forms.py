"""Step side-forms built from the document's own models, and read back into plain step data."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from engine.document import Settings
from engine.steps import EDGE_FIELDS, KINDS

STEP_MODELS: dict[str, type[BaseModel]] = dict(KINDS)
END = ""


@dataclass
class Field:
    name: str
    label: str
    widget: str  # text | select | checkbox | textarea
    value: Any
    options: list[tuple[str, str]] = field(default_factory=list)
    help: str = ""
    rows: int = 4


@dataclass
class StepForm:
    id: str
    kind: str
    fields: list[Field]
    errors: dict[str, list[str]] = field(default_factory=dict)


def _literal_options(annotation: Any) -> list[str] | None:
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if any(_literal_options(a) is None for a in args):
            return None  # a choice or free text (look_back: 'enrolment' or '7d'): a text box takes both
        for arg in args:
            found = _literal_options(arg)
            if found:
                return found
    return None


def _is_simple(annotation: Any) -> bool:
    simple = (str, int, float)
    if annotation in simple or get_origin(annotation) is Literal:
        return True
    if get_origin(annotation) is typing.Annotated:
        return _is_simple(get_args(annotation)[0])
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return all(_is_simple(a) or a is type(None) for a in get_args(annotation))
    return False


def build_form(step: dict[str, Any], step_ids: list[str], errors: dict[str, list[str]] | None = None,
               labels: dict[str, str] | None = None) -> StepForm:
    labels = labels or {}
    kind = str(step.get("kind"))
    model = STEP_MODELS.get(kind)
    fields: list[Field] = []
    if model is None:
        return StepForm(str(step.get("id")), kind, [], {"": [f"unknown step kind '{kind}'"]})
    for name, info in model.model_fields.items():
        if name in ("id", "kind"):
            continue
        label = name.replace("_", " ")
        value = step.get(name, None if info.is_required() else info.get_default(call_default_factory=True))
        if name in EDGE_FIELDS:
            options = [(END, "(end of the care model)")] + [
                (s, s if labels.get(s, s) == s else f"{labels[s]} ({s})") for s in step_ids if s != step.get("id")]
            fields.append(Field(name, f"then → ({label})" if name != "next" else "then →", "select",
                                value or END, options))
        elif (literals := _literal_options(info.annotation)) is not None:
            choices = [(o, o) for o in literals]
            if not info.is_required() and info.default is None:
                choices.insert(0, ("", "—"))
            fields.append(Field(name, label, "select", "" if value is None else str(value), choices))
        elif info.annotation is bool:
            fields.append(Field(name, label, "checkbox", bool(value)))
        elif _is_simple(info.annotation):
            widget = "textarea" if name in ("body", "message", "text") else "text"
            fields.append(Field(name, label, widget, "" if value is None else value, help=info.description or "",
                                rows=6 if name == "body" else 3))
        else:
            if isinstance(value, str):  # text that did not read as YAML yet, kept as the marketer wrote it
                text = value
            else:
                text = "" if value in (None, [], {}) else yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
            fields.append(Field(name, label, "textarea", text, help=(info.description or "YAML"),
                                rows=max(4, text.count("\n") + 2)))
    return StepForm(str(step.get("id")), kind, fields, errors or {})


def read_form(step: dict[str, Any], form: dict[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The step as the form describes it, and the fields whose YAML could not be read."""
    kind = str(step.get("kind"))
    new: dict[str, Any] = {"id": step.get("id"), "kind": kind}
    errors: dict[str, list[str]] = {}
    for f in build_form(step, []).fields:
        raw = form.get(f.name)
        if f.widget == "checkbox":
            new[f.name] = raw == "true"
        elif f.name in EDGE_FIELDS:
            if raw:
                new[f.name] = raw
        elif raw is None or raw.strip() == "":
            continue
        elif f.widget == "textarea" and f.help and f.name not in ("body", "message", "text"):
            try:
                new[f.name] = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                errors.setdefault(f.name, []).append(yaml_error(exc))
                new[f.name] = raw  # kept as typed, and shown back as typed, until it reads
        else:
            new[f.name] = raw
    return new, errors


def read_settings(text: str) -> tuple[dict[str, Any] | None, list[str]]:
    """Settings as typed into the YAML box, checked against the document model before anything is stored;
    or the reasons they cannot be, each naming the setting. `entry: form.submitted` is read as the event."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        return None, [f"settings: {yaml_error(exc)}"]
    example = "write one setting per line, such as `entry: form.submitted` or `reenrol: after_exit`"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [f"settings: {example}; this is {_a(data)}"]
    entry = data.get("entry")
    if isinstance(entry, str):
        data = {**data, "entry": {"event": entry}}
    elif isinstance(entry, list):
        return None, ["settings.entry: one event enrols leads, such as `entry: form.submitted` (for several "
                      "events, one care model each, or a `when` condition)"]
    try:
        Settings.model_validate(data)
    except ValidationError as exc:
        return None, [f"settings.{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                      for e in exc.errors()]
    return data, []


def yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1})" if mark else ""
    return f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"


def _a(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"the plain value {value!r}"


def summary(step: dict[str, Any]) -> str:
    """One line for the canvas node."""
    kind = KINDS.get(str(step.get("kind")))
    return (kind.summary(step) if kind else "")[:40]
