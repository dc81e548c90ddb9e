"""Edits a draft care-model document (plain data, possibly invalid) the way the designer's canvas does:
insert a step on an edge, update, delete, move, rename. Pure: every function returns a new document."""

from __future__ import annotations

import copy
import re
from typing import Any

from engine.fields import STEP_ID_PATTERN
from engine.steps import KINDS as STEP_KINDS

START = "__start__"  # the canvas's entry node; its one edge is the document's `start`

# What a freshly added step looks like; `{next}` is replaced by where the edge it was put on led.
DEFAULTS: dict[str, dict[str, Any]] = {kind: cls.NEW for kind, cls in STEP_KINDS.items()}
KINDS = tuple(DEFAULTS)
TERMINAL = frozenset(kind for kind, cls in STEP_KINDS.items() if not cls.EDGES)  # no way out: exit, move


def blank(model_id: str, name: str) -> dict[str, Any]:
    return {"schema_version": 1, "id": model_id, "name": name, "start": "end",
            "steps": [{"id": "end", "kind": "exit", "reason": "completed"}]}


def steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    raw = doc.get("steps")
    return [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []


def find(doc: dict[str, Any], step_id: str) -> dict[str, Any] | None:
    return next((s for s in steps(doc) if s.get("id") == step_id), None)


def labels(doc: dict[str, Any]) -> dict[str, str]:
    """What to call each step: the name the marketer gave it, or its id."""
    return {str(s.get("id")): str(s.get("name") or s.get("id")) for s in steps(doc)}


def reachable(doc: dict[str, Any]) -> set[str]:
    by_id = {str(s.get("id")): s for s in steps(doc)}
    seen: set[str] = set()
    todo = [doc.get("start")]
    while todo:
        current = todo.pop()
        if isinstance(current, str) and current in by_id and current not in seen:
            seen.add(current)
            todo += [target for _, target, _ in out_edges(by_id[current])]
    return seen


def out_edges(step: dict[str, Any]) -> list[tuple[str, str | None, str]]:
    """(field path, target, label) for each way out of a step, read leniently from raw data."""
    kind = STEP_KINDS.get(str(step.get("kind")))
    edges = kind.outgoing(step) if kind else [("next", step.get("next"), "")]
    # A target that is not text (a draft can hold anything) leads nowhere; the validator says why.
    return [(field, target if isinstance(target, str) else None, str(label)) for field, target, label in edges]


def _get(step: dict[str, Any], path: str) -> Any:
    node: Any = step
    for part in path.split("."):
        node = node[int(part)] if isinstance(node, list) else node.get(part)
    return node


def _set(step: dict[str, Any], path: str, value: Any) -> None:
    *head, last = path.split(".")
    node: Any = step
    for part in head:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def new_id(doc: dict[str, Any], kind: str) -> str:
    taken = {s.get("id") for s in steps(doc)}
    base = kind.replace("_", "-")
    n = 1
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def insert(doc: dict[str, Any], source: str, field: str, kind: str) -> tuple[dict[str, Any], str]:
    """A new step of `kind` on the edge `source`.`field`; every way out of it leads where the edge led."""
    if kind not in DEFAULTS:
        raise ValueError(f"unknown step kind '{kind}'; kinds are {', '.join(KINDS)}")
    doc = copy.deepcopy(doc)
    step_id = new_id(doc, kind)
    step = {"id": step_id, "kind": kind, **_fill(DEFAULTS[kind], _led_to(doc, source, field))}
    _lead_to(doc, source, field, step_id)
    doc.setdefault("steps", []).append(step)
    return doc, step_id


def _led_to(doc: dict[str, Any], source: str, field: str) -> Any:
    """Where the edge `source`.`field` leads now."""
    return doc.get("start") if source == START else _get(_step(doc, source), field)


def _lead_to(doc: dict[str, Any], source: str, field: str, step_id: str) -> None:
    """Points the edge `source`.`field` at a step."""
    if source == START:
        doc["start"] = step_id
    else:
        _set(_step(doc, source), field, step_id)


def _fill(template: Any, target: str | None) -> Any:
    if template == "{next}":
        return target
    if isinstance(template, dict):
        return {k: _fill(v, target) for k, v in template.items() if _fill(v, target) is not None or v != "{next}"}
    if isinstance(template, list):
        return [_fill(v, target) for v in template]
    return copy.deepcopy(template)


def _step(doc: dict[str, Any], step_id: str) -> dict[str, Any]:
    step = find(doc, step_id)
    if step is None:
        raise KeyError(f"no step '{step_id}' in this care model")
    return step


def update(doc: dict[str, Any], step_id: str, new: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["steps"] = [new if s.get("id") == step_id else s for s in steps(doc)]
    return doc


def delete(doc: dict[str, Any], step_id: str) -> dict[str, Any]:
    """Removes a step; edges that led to it now lead where it led (its first way out)."""
    doc = copy.deepcopy(doc)
    step = _step(doc, step_id)
    exits = out_edges(step)
    onward = exits[0][1] if exits else None
    doc["steps"] = [s for s in steps(doc) if s.get("id") != step_id]
    _redirect(doc, step_id, onward)
    return doc


def _redirect(doc: dict[str, Any], old: str, new: str | None) -> None:
    if doc.get("start") == old:
        doc["start"] = new or (steps(doc)[0]["id"] if steps(doc) else "")
    for s in steps(doc):
        for field, target, _ in out_edges(s):
            if target == old:
                _set(s, field, new)


def move(doc: dict[str, Any], step_id: str, source: str, field: str) -> dict[str, Any]:
    """Takes a step with a single way out from where it stands and puts it on another edge."""
    step = _step(doc, step_id)
    if len(out_edges(step)) != 1:
        raise ValueError(f"only steps with one way out can move; '{step_id}' has {len(out_edges(step))}")
    if source == step_id:
        raise ValueError("a step cannot move onto its own way out")
    doc = delete(doc, step_id)
    moved = copy.deepcopy(step)
    _set(moved, out_edges(moved)[0][0], _led_to(doc, source, field))
    _lead_to(doc, source, field, step_id)
    doc["steps"].append(moved)
    return doc


def cut_off(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Steps an edit left with no path from the start, in document order."""
    lost = reachable(before) - reachable(after)
    return [str(s.get("id")) for s in steps(after) if s.get("id") in lost]


def insert_exit_branch(doc: dict[str, Any], source: str, field: str, kind: str) -> tuple[dict[str, Any], str]:
    """A branch on the edge whose first case ends in a new `kind` step, and whose otherwise carries on where the
    edge led: an exit (or move) for some leads that keeps what followed for the rest."""
    doc, branch = insert(doc, source, field, "branch")
    return insert(doc, branch, "cases.0.next", kind)


def remove(doc: dict[str, Any], step_ids: list[str]) -> dict[str, Any]:
    """Drops steps nothing reaches any more (what a terminal step cut off)."""
    doc = copy.deepcopy(doc)
    doc["steps"] = [s for s in steps(doc) if s.get("id") not in step_ids]
    return doc


def rename(doc: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    """Gives a step another id; the start and every edge that led to it follow."""
    new = new.strip()
    if not re.fullmatch(STEP_ID_PATTERN, new):
        raise ValueError(f"'{new}' cannot be a step id: start with a letter, then letters, digits, '-' or '_' "
                         "(at most 64)")
    if new != old and find(doc, new) is not None:
        raise ValueError(f"another step is called '{new}' already")
    doc = copy.deepcopy(doc)
    _step(doc, old)["id"] = new
    _redirect(doc, old, new)
    return doc


def all_edges(doc: dict[str, Any]) -> list[tuple[str, str, str | None, str]]:
    """(source, field, target, label) for every edge, the start edge first."""
    start = doc.get("start")
    out = [(START, "start", start if isinstance(start, str) else None, "")]
    for s in steps(doc):
        out += [(str(s.get("id")), field, target, label) for field, target, label in out_edges(s)]
    return out


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:64] or "care-model"


# --- copy and paste: a step, or a branch with the steps only it leads to ---------------------------------------


def clip(doc: dict[str, Any], step_id: str) -> list[dict[str, Any]]:
    """The step and the steps reached only through it (a branch's own paths), the step first: what Copy takes."""
    by_id = {str(s.get("id")): s for s in steps(doc)}
    if step_id not in by_id:
        raise KeyError(f"no step '{step_id}' in this care model")
    below: set[str] = set()
    todo = [step_id]
    while todo:
        current = todo.pop()
        if current in by_id and current not in below:
            below.add(current)
            todo += [t for _, t, _ in out_edges(by_id[current]) if t]
    # What the start reaches without passing through the step is shared with other paths: it stays behind.
    without = {**doc, "steps": [s for s in steps(doc) if s.get("id") != step_id]}
    shared = reachable(without) if doc.get("start") != step_id else set()
    owned = [step_id] + [str(s.get("id")) for s in steps(doc) if s.get("id") in below - shared - {step_id}]
    return [copy.deepcopy(by_id[i]) for i in owned]


def paste(doc: dict[str, Any], source: str, field: str, clipped: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Copied steps on the edge `source`.`field`, with fresh ids; every way out of them that left the copied steps
    now leads where the edge led, in this care model or another."""
    if not clipped or not all(isinstance(s, dict) and s.get("kind") in DEFAULTS for s in clipped):
        raise ValueError("nothing to paste: copy a step first")
    doc = copy.deepcopy(doc)
    target = _led_to(doc, source, field)
    taken = {str(s.get("id")) for s in steps(doc)}
    ids: dict[str, str] = {}
    for s in clipped:
        old = str(s.get("id"))
        base = re.sub(r"-copy(-\d+)?$", "", old)[:56] if re.fullmatch(STEP_ID_PATTERN, old) else str(s["kind"])
        new, n = f"{base}-copy", 1
        while new in taken:
            n += 1
            new = f"{base}-copy-{n}"
        taken.add(new)
        ids[old] = new
    pasted = []
    for s in copy.deepcopy(clipped):
        s["id"] = ids[str(s.get("id"))]
        for path, onward, _ in out_edges(s):
            _set(s, path, ids.get(onward or "", target))
        pasted.append(s)
    first = pasted[0]["id"]
    _lead_to(doc, source, field, first)
    doc.setdefault("steps", []).extend(pasted)
    return doc, first


def duplicate(doc: dict[str, Any], step_id: str) -> tuple[dict[str, Any], str]:
    """A copy of one step right after it, on its first way out."""
    exits = out_edges(_step(doc, step_id))
    if not exits:
        raise ValueError(f"'{step_id}' has no way out, so a copy right after it would never be reached: "
                         "copy it and paste it at a + instead")
    return paste(doc, step_id, exits[0][0], clip(doc, step_id)[:1])


def declare_winner(doc: dict[str, Any], step_id: str, variant: str) -> dict[str, Any]:
    """The split sends every lead to `variant` from now on: the other variants and the holdout go. Steps only
    they led to stay in the draft, unreached, for the marketer to delete or keep."""
    step = find(doc, step_id)
    if step is None or step.get("kind") != "split":
        raise ValueError(f"'{step_id}' is not a split step")
    chosen = [v for v in step.get("variants") or [] if isinstance(v, dict) and v.get("name") == variant]
    if not chosen:
        raise ValueError(f"split '{step_id}' has no variant '{variant}'")
    won = {k: v for k, v in step.items() if k not in ("variants", "holdout", "holdout_next")}
    return update(doc, step_id, won | {"variants": [chosen[0] | {"weight": 1}]})
