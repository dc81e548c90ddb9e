"""Nested form data (`cases.0.when.conditions.1.op`) read back into the document's own shapes, and the builder's
structural edits (add a condition, group, negate, remove) applied to plain data. Pure: no request, no store.

Reading keeps the shape the marketer or the YAML gave: a field left at its default is written only when the
original held it, so a condition or setting shown in a form and saved unchanged comes back exactly as it was."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from engine.conditions import describe

NEW_CONDITION: dict[str, Any] = {"type": "score", "score": "total", "op": "gte", "value": 50}
_MISSING = object()
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


def unflatten(pairs: Iterable[tuple[str, str]], prefix: str) -> Any:
    """The value under `prefix` in dotted form names; numeric parts are list positions, a repeated name a list."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        if not name.startswith(prefix + "."):
            continue
        parts = name[len(prefix) + 1:].split(".")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            last = parts[-1]
            if last in node:
                node[last] = (node[last] if isinstance(node[last], list) else [node[last]]) + [value]
            else:
                node[last] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


def items(value: Any) -> list[Any]:
    """A form list, which comes back as a dict or a single value when it has gaps or one entry."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value[k] for k in sorted(value, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else 0))]
    return [] if value in (None, "") else [value]


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def number(text: Any) -> Any:
    """A number as typed; text that is not one is kept as typed, so the validator names it and nothing is lost."""
    if not isinstance(text, str):
        return text
    text = text.strip()
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def scalar(text: str) -> Any:
    """An attribute value: a number, true or false, or text."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return number(text)


def keep_shape(new: dict[str, Any], original: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """`new` without the fields a form always posts but the original left out at their defaults, in the
    original's key order."""
    before = original if isinstance(original, dict) else {}
    out = {k: v for k, v in new.items() if k in before or defaults.get(k, _MISSING) != v}
    order = [k for k in before if k in out] + [k for k in out if k not in before]
    return {k: out[k] for k in order}


def read_condition(node: Any, original: Any = None) -> dict[str, Any]:
    node = node if isinstance(node, dict) else {}
    before = original if isinstance(original, dict) else {}
    kind = node.get("type") or "score"
    if kind in ("all", "any"):
        olds = as_list(before.get("conditions"))
        children = [read_condition(c, olds[i] if i < len(olds) else None)
                    for i, c in enumerate(items(node.get("conditions")))]
        return {"type": kind, "conditions": children}
    if kind == "not":
        return {"type": "not", "condition": read_condition(node.get("condition"), before.get("condition"))}
    if kind == "score":
        new = {"type": "score", "score": node.get("score") or "total", "op": node.get("op") or "gte",
               "value": number(node.get("value", ""))}
        return keep_shape(new, before, {"score": "total"})
    if kind == "attribute":
        op = node.get("op") or "eq"
        new = {"type": "attribute", "name": str(node.get("name", "")).strip(), "op": op}
        raw = str(node.get("value", ""))
        if op in ("in", "not_in"):
            new["value"] = [scalar(v) for v in raw.split(",") if v.strip()]
        elif op not in ("exists", "missing"):
            new["value"] = scalar(raw)
        return keep_shape(new, before, {})
    if kind == "stage":
        stages = [str(s) for s in items(node.get("stages"))]
        return keep_shape({"type": "stage", "op": node.get("op") or "in", "stages": stages}, before, {"op": "in"})
    new = {"type": "engagement", "event": str(node.get("event", "")).strip(),
           "min_count": number(node.get("min_count") or "1")}
    if str(node.get("within", "")).strip():
        new["within"] = str(node["within"]).strip()
    return keep_shape(new, before, {"min_count": 1})


def read_pairs(node: Any) -> dict[str, Any]:
    """Key and value rows (event data to match, a lead's attributes); a row without a key is dropped."""
    out: dict[str, Any] = {}
    for row in items(node):
        if isinstance(row, dict) and str(row.get("key", "")).strip():
            out[str(row["key"]).strip()] = scalar(str(row.get("value", "")))
    return out


# --- structural edits, addressed by dotted path into plain data ---------------------------------------------


def get_path(data: Any, path: str) -> Any:
    node = data
    for part in path.split(".") if path else []:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def set_path(data: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node = get_path(data, ".".join(parents))
    if isinstance(node, list) and last.isdigit():
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value


def apply(data: dict[str, Any], action: str) -> dict[str, Any]:
    """One builder button: `and:PATH`, `or:PATH`, `not:PATH`, `remove:PATH` on a condition; `append:PATH` and
    `drop:PATH` on a list (cases, variants, goals, rows). Unknown actions change nothing."""
    verb, _, path = action.partition(":")
    out = copy.deepcopy(data)
    node = get_path(out, path)
    if verb in ("and", "or") and isinstance(node, dict):
        group = "all" if verb == "and" else "any"
        if node.get("type") == group and isinstance(node.get("conditions"), list):
            node["conditions"].append(dict(NEW_CONDITION))
        else:
            set_path(out, path, {"type": group, "conditions": [node, dict(NEW_CONDITION)]})
    elif verb == "not" and isinstance(node, dict):
        set_path(out, path, node["condition"] if node.get("type") == "not" else {"type": "not", "condition": node})
    elif verb == "group" and isinstance(node, dict) and isinstance(node.get("conditions"), list):
        other = "any" if node.get("type") == "all" else "all"
        node["conditions"].append({"type": other, "conditions": [dict(NEW_CONDITION)]})
    elif verb == "remove":
        _remove_condition(out, path)
    elif verb == "drop":
        parent, _, index = path.rpartition(".")
        rows = get_path(out, parent)
        if isinstance(rows, list) and index.isdigit() and int(index) < len(rows):
            rows.pop(int(index))
    elif verb == "append":
        rows = get_path(out, path)
        if rows is None:
            set_path(out, path, [])
            rows = get_path(out, path)
        if isinstance(rows, list):
            rows.append(new_item(path.rsplit(".", 1)[-1], len(rows)))
    elif verb == "when" and isinstance(node, dict):
        node["when"] = dict(NEW_CONDITION)
    return out


def _remove_condition(data: dict[str, Any], path: str) -> None:
    """A row out of its group; a group left with one row becomes that row, and a condition with nothing left
    (an entry rule's optional `when`) is removed."""
    parent_path, _, index = path.rpartition(".")
    siblings = get_path(data, parent_path)
    if isinstance(siblings, list) and index.isdigit() and parent_path.endswith("conditions"):
        siblings.pop(int(index))
        group_path = parent_path.rpartition(".")[0]
        if len(siblings) == 1:
            set_path(data, group_path, siblings[0])
        return
    holder = get_path(data, parent_path)
    if parent_path == "entry" and index == "when" and isinstance(holder, dict):
        holder.pop("when", None)  # an entry rule stands without a condition; a branch case or goal does not
    elif index == "condition" and parent_path:
        _remove_condition(data, parent_path)  # the row under a "not" goes with its "not"


def new_item(list_name: str, count: int) -> dict[str, Any]:
    if list_name == "cases":
        return {"label": f"case {count + 1}", "when": dict(NEW_CONDITION)}
    if list_name == "variants":
        return {"name": chr(ord("A") + count) if count < 26 else f"V{count + 1}", "weight": 1}
    if list_name == "events":
        return {"after": "1d", "type": "email.clicked"}
    if list_name in ("goals", "exit_when"):
        name = "goal" if list_name == "goals" else "exit rule"
        return {"name": f"{name} {count + 1}", "when": dict(NEW_CONDITION)}
    return {}


def sentences(data: Any, path: str = "", inside: bool = False) -> dict[str, str]:
    """The sentence of every condition in a step or the settings, keyed as the builder's ids, so a change can
    update each row's wording without redrawing the form."""
    out: dict[str, str] = {}
    if isinstance(data, dict):
        if inside:
            out[path.replace(".", "-")] = describe(data)
        for key, value in data.items():
            child = f"{path}.{key}" if path else key
            if key == "when" or (inside and key == "condition"):
                out |= sentences(value, child, True)
            elif inside and key == "conditions" and isinstance(value, list):
                for i, c in enumerate(value):
                    out |= sentences(c, f"{child}.{i}", True)
            elif not inside:
                out |= sentences(value, child)
    elif isinstance(data, list) and not inside:
        for i, value in enumerate(data):
            out |= sentences(value, f"{path}.{i}")
    return out
