"""What changed between two versions of a care model, as a marketer thinks of it: steps added, removed and
changed (with the fields), edges rewired, settings changed. Both sides are read by meaning, so formatting,
defaults written out or left out, and `20` against `20.0` are no change at all."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from engine.document import CareModelDocument
from engine.steps import KINDS


@dataclass
class StepChange:
    step: str
    kind: str
    name: str = ""  # what the marketer called it, if anything
    fields: list[str] = field(default_factory=list)  # changed fields, edges excluded
    rewired: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # (edge, was, now)


@dataclass
class Changes:
    added: list[StepChange] = field(default_factory=list)
    removed: list[StepChange] = field(default_factory=list)
    changed: list[StepChange] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)  # top-level names and settings fields that changed
    start: tuple[str | None, str | None] | None = None  # the entry's edge, rewired: (was, now)
    raw: list[tuple[str, str]] = field(default_factory=list)  # the YAML diff of both sides, normalised
    first: bool = False  # nothing before: every step is new, and that is all there is to say

    @property
    def none(self) -> bool:
        return not (self.added or self.removed or self.changed or self.settings or self.start)


def normalise(doc: dict[str, Any] | None) -> dict[str, Any]:
    """The document as its meaning: validated, defaults left out, one number form, one order."""
    if not doc:
        return {}
    try:
        return CareModelDocument.model_validate(doc).model_dump(mode="json", exclude_defaults=True)
    except ValidationError:
        return doc  # a draft that does not validate yet is compared as written


def compare(old: dict[str, Any] | None, new: dict[str, Any]) -> Changes:
    before, after = normalise(old), normalise(new)
    was, now = _steps(before), _steps(after)
    changes = Changes(raw=_raw(before, after))
    changes.added = [_rewired(_change(sid, step), {}, step) for sid, step in now.items() if sid not in was]
    changes.removed = [_change(sid, step) for sid, step in was.items() if sid not in now]
    for sid in was.keys() & now.keys():
        if was[sid] != now[sid]:
            change = _rewired(_change(sid, now[sid]), was[sid], now[sid])
            change.fields = sorted(k for k in was[sid].keys() | now[sid].keys()
                                   if was[sid].get(k) != now[sid].get(k) and k not in _edge_fields(now[sid])
                                   and k not in _edge_fields(was[sid]))
            changes.changed.append(change)
    changes.changed.sort(key=lambda c: list(now).index(c.step))
    if not before:
        changes.first = True
        return changes
    if before.get("start") != after.get("start"):
        changes.start = (before.get("start"), after.get("start"))
    top = (before.keys() | after.keys()) - {"steps", "settings", "start"}
    old_settings, new_settings = _mapping(before.get("settings")), _mapping(after.get("settings"))
    changes.settings = sorted(k for k in top if before.get(k) != after.get(k)) + sorted(
        f"settings.{k}" for k in old_settings.keys() | new_settings.keys()
        if old_settings.get(k) != new_settings.get(k))
    return changes


def _change(step_id: str, step: dict[str, Any]) -> StepChange:
    return StepChange(step_id, str(step.get("kind")), str(step.get("name") or ""))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _steps(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = doc.get("steps") if isinstance(doc.get("steps"), list) else []
    return {str(s.get("id")): s for s in raw or [] if isinstance(s, dict)}


def _outgoing(step: dict[str, Any]) -> dict[str, str | None]:
    kind = KINDS.get(str(step.get("kind")))
    return {path: target for path, target, _ in kind.outgoing(step)} if kind else {}


def _edge_fields(step: dict[str, Any]) -> set[str]:
    """Fields that only say where the step leads: a change to them is a rewiring, shown as such."""
    names = {path.split(".")[0] for path in _outgoing(step)}
    return {n for n in names if n not in ("cases", "variants")}


def _rewired(change: StepChange, old: dict[str, Any], new: dict[str, Any]) -> StepChange:
    was, now = _outgoing(old), _outgoing(new)
    change.rewired = [(edge, was.get(edge), now.get(edge)) for edge in now.keys() | was.keys()
                      if was.get(edge) != now.get(edge)]
    change.rewired.sort()
    return change


def diff_lines(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """The YAML diff of two versions, read by meaning, as plain lines (what the audit log keeps of a publish)."""
    return [line for _, line in _raw(normalise(old), normalise(new))]


def _raw(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str]]:
    def lines(doc: dict[str, Any]) -> list[str]:
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).splitlines() if doc else []

    diff = difflib.unified_diff(lines(before), lines(after), "published", "draft", lineterm="", n=2)
    return [("add" if ln.startswith("+") else "del" if ln.startswith("-") else "", ln) for ln in diff]
