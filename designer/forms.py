"""Step side-forms built from the document's own models, and read back into plain step data."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from designer.structured import as_dict, as_list, items, keep_shape, number, read_condition, read_pairs, unflatten
from engine.document import Settings
from engine.fields import WEEKDAYS
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


# Fields with a builder of their own instead of YAML: what widget shows them. A webhook's payload stays YAML: it
# is an integrator's nested JSON, not a marketer's rows.
STRUCTURED = {"cases": "cases", "variants": "variants", "where": "pairs", "days": "weekdays"}
PLAIN_TEXT = ("until", "value")  # a date or any value: one line of text reads better than YAML


def build_form(step: dict[str, Any], step_ids: list[str], errors: dict[str, list[str]] | None = None,
               labels: dict[str, str] | None = None) -> StepForm:
    labels = labels or {}
    kind = str(step.get("kind"))
    model = STEP_MODELS.get(kind)
    fields: list[Field] = []
    if model is None:
        return StepForm(str(step.get("id")), kind, [], {"": [f"unknown step kind '{kind}'"]})
    targets = [(END, "(end of the care model)")] + [
        (s, s if labels.get(s, s) == s else f"{labels[s]} ({s})") for s in step_ids if s != step.get("id")]
    for name, info in model.model_fields.items():
        if name in ("id", "kind"):
            continue
        label = name.replace("_", " ")
        value = step.get(name, None if info.is_required() else info.get_default(call_default_factory=True))
        if name in EDGE_FIELDS:
            fields.append(Field(name, f"then → ({label})" if name != "next" else "then →", "select",
                                value or END, targets))
        elif name in STRUCTURED:
            fields.append(Field(name, label, STRUCTURED[name], value, targets, help=info.description or ""))
        elif (literals := _literal_options(info.annotation)) is not None:
            choices = [(o, o) for o in literals]
            if not info.is_required() and info.default is None:
                choices.insert(0, ("", "—"))
            fields.append(Field(name, label, "select", "" if value is None else str(value), choices))
        elif info.annotation is bool:
            fields.append(Field(name, label, "checkbox", bool(value)))
        elif _is_simple(info.annotation) or name in PLAIN_TEXT:
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


def read_form(step: dict[str, Any], pairs: list[tuple[str, str]]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The step as the form describes it, and the fields whose YAML could not be read. Builders post nested
    names (`cases.0.when.op`); repeated names (checked weekdays) come as several pairs."""
    form = dict(pairs)
    kind = str(step.get("kind"))
    model = STEP_MODELS.get(kind)
    numeric = {n for n, i in model.model_fields.items() if i.annotation in (int, float)} if model else set()
    new: dict[str, Any] = {"id": step.get("id"), "kind": kind}
    errors: dict[str, list[str]] = {}
    for f in build_form(step, []).fields:
        raw = form.get(f.name)
        if f.widget == "checkbox":
            new[f.name] = raw == "true"
        elif f.widget in ("cases", "variants"):
            new[f.name] = _read_rows(f.widget, unflatten(pairs, f.name), step.get(f.name))
        elif f.widget == "pairs":
            found = read_pairs(unflatten(pairs, f.name))
            if found or f.name in step:
                new[f.name] = found
        elif f.widget == "weekdays":
            days = [v for k, v in pairs if k == f.name]
            if f.name in step or days != list(WEEKDAYS):
                new[f.name] = days
        elif f.name in EDGE_FIELDS:
            if raw:
                new[f.name] = raw
        elif raw is None or raw.strip() == "":
            if step.get(f.name, 0) in ("", None):  # an empty field the step wrote out stays written out
                new[f.name] = step[f.name]
        elif f.widget == "textarea" and f.help and f.name not in ("body", "message", "text"):
            try:
                new[f.name] = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                errors.setdefault(f.name, []).append(yaml_error(exc))
                new[f.name] = raw  # kept as typed, and shown back as typed, until it reads
        elif f.name in numeric:
            new[f.name] = number(raw)
        else:
            new[f.name] = raw
    return keep_shape(new, step, _defaults(kind)), errors


def _defaults(kind: str) -> dict[str, Any]:
    """What a field holds when the step leaves it out: a form posts it anyway, and it is dropped again unless the
    step had it, so saving a form unchanged changes nothing."""
    model = STEP_MODELS.get(kind)
    return {} if model is None else {name: info.get_default(call_default_factory=True)
                                     for name, info in model.model_fields.items() if not info.is_required()}


def _read_rows(widget: str, node: Any, original: Any) -> list[dict[str, Any]]:
    olds = original if isinstance(original, list) else []
    out = []
    for i, row in enumerate(items(node)):
        row = row if isinstance(row, dict) else {}
        old = olds[i] if i < len(olds) and isinstance(olds[i], dict) else {}
        if widget == "cases":
            new: dict[str, Any] = {"label": str(row.get("label", "")).strip(),
                                   "when": read_condition(row.get("when"), old.get("when"))}
        else:
            new = {"name": str(row.get("name", "")).strip(), "weight": number(row.get("weight", ""))}
        if row.get("next"):
            new["next"] = row["next"]
        out.append(keep_shape(new, old, {"label": ""}))
    return out


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
    errors = settings_errors(data)
    return (None, errors) if errors else (data, [])


def settings_errors(data: dict[str, Any]) -> list[str]:
    try:
        Settings.model_validate(data)
    except ValidationError as exc:
        return [f"settings.{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()]
    return []


def read_settings_form(pairs: list[tuple[str, str]], original: Any) -> tuple[dict[str, Any], list[str]]:
    """Settings as the settings form posts them, in the shape the original had; and what does not fit, naming
    the setting. Unlike the YAML box, a form always yields data that can be shown back, valid or not."""
    before = original if isinstance(original, dict) else {}
    form = dict(pairs)
    out: dict[str, Any] = {}
    entry = as_dict(unflatten(pairs, "entry"))
    old_entry = as_dict(before.get("entry"))
    rule: dict[str, Any] = {}
    if str(entry.get("event", "")).strip():
        rule["event"] = str(entry["event"]).strip()
    where = read_pairs(entry.get("where"))
    if where or "where" in old_entry:
        rule["where"] = where
    if isinstance(entry.get("when"), dict):
        rule["when"] = read_condition(entry["when"], old_entry.get("when"))
    if rule:
        out["entry"] = keep_shape(rule, old_entry, {})
    out["reenrol"] = form.get("reenrol") or "never"
    for name in ("goals", "exit_when"):
        olds = as_list(before.get(name))
        rows = []
        for i, raw_row in enumerate(items(unflatten(pairs, name))):
            row = as_dict(raw_row)
            old = as_dict(olds[i]) if i < len(olds) else {}
            rows.append({"name": str(row.get("name", "")).strip(), "when": read_condition(row.get("when"),
                                                                                           old.get("when"))})
        out[name] = rows
    # A window or cap just switched on has no inputs yet: it starts from the defaults the form then shows.
    if form.get("send_window.on"):
        fresh = "send_window.start" not in form
        window = {"start": form.get("send_window.start", "08:00"), "end": form.get("send_window.end", "18:00"),
                  "days": list(WEEKDAYS[:5]) if fresh else [v for k, v in pairs if k == "send_window.days"]}
        old_window = before.get("send_window")
        out["send_window"] = keep_shape(window, old_window, {"start": "08:00", "end": "18:00", "days": list(
            WEEKDAYS[:5])}) if isinstance(old_window, dict) else window
    if form.get("frequency_cap.on"):
        channels = [c.strip() for c in form.get("frequency_cap.channels", "email").split(",") if c.strip()]
        cap = {"max": number(form.get("frequency_cap.max", "2")), "per": form.get("frequency_cap.per", "7d").strip(),
               "channels": channels, "on_cap": form.get("frequency_cap.on_cap") or "skip"}
        old_cap = before.get("frequency_cap")
        out["frequency_cap"] = keep_shape(cap, old_cap, {"channels": ["email"], "on_cap": "skip"}
                                          ) if isinstance(old_cap, dict) else cap
    out["default_timezone"] = form.get("default_timezone", "").strip() or "UTC"
    out = keep_shape(out, before, {"reenrol": "never", "goals": [], "exit_when": [], "default_timezone": "UTC"})
    return out, settings_errors(out)


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
