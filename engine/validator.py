"""Reads a care-model document and reports every problem, located by step id, field and line."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from engine.content import check_template
from engine.document import CareModelDocument, edges
from engine.steps import WAITING_KINDS

_TAG_ERRORS = {"union_tag_invalid", "union_tag_not_found"}


@dataclass(frozen=True)
class Problem:
    message: str
    step: str | None = None
    field: str | None = None
    line: int | None = None

    def location(self) -> str:
        where = [f"step '{self.step}'"] if self.step else []
        if self.field:
            where.append(f"field '{self.field}'")
        return ", ".join(where)

    def __str__(self) -> str:
        where = ", ".join(filter(None, [f"line {self.line}" if self.line else "", self.location()]))
        return f"{where}: {self.message}" if where else self.message

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DocumentError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def parse_text(text: str) -> tuple[Any, yaml.Node | None, list[Problem]]:
    """Raw data and its YAML node tree (for line numbers). JSON is read as YAML, which it nearly is."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        try:  # JSON that YAML rejects (tabs, say) still deserves a JSON reading
            return json.loads(text), None, []
        except json.JSONDecodeError:
            return None, None, [Problem(f"not valid YAML or JSON: {problem}", line=mark.line + 1 if mark else None)]
    if not isinstance(data, dict):
        return None, None, [Problem("a care model must be a mapping with 'id', 'name', 'start' and 'steps'")]
    return data, node, []


def load(text: str) -> tuple[CareModelDocument | None, list[Problem]]:
    data, node, problems = parse_text(text)
    if problems:
        return None, problems
    return check(data, node)


def load_or_raise(text: str) -> CareModelDocument:
    doc, problems = load(text)
    if doc is None or problems:
        raise DocumentError(problems)
    return doc


def check(data: Any, node: yaml.Node | None = None) -> tuple[CareModelDocument | None, list[Problem]]:
    """Structural validation by the schema, then the graph rules the schema cannot say."""
    try:
        doc = CareModelDocument.model_validate(data)
    except ValidationError as exc:
        return None, by_line([_locate(err, data, node) for err in exc.errors()])
    seen: dict[str, int] = {}
    located = []
    for problem in graph_problems(doc):
        occurrence = 0
        if problem.message.startswith("duplicate step id") and problem.step:  # point at the duplicate itself
            occurrence = seen[problem.step] = seen.get(problem.step, 0) + 1
        located.append(_with_line(problem, data, node, occurrence))
    return doc, by_line(located)


def by_line(problems: list[Problem]) -> list[Problem]:
    """In the order a reader meets them in the file; problems without a line keep their order, last."""
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))


def graph_problems(doc: CareModelDocument, known_models: set[str] | None = None) -> list[Problem]:
    by_id: dict[str, Any] = {}
    broken: list[Problem] = []
    for step in doc.steps:
        if step.id in by_id:
            broken.append(Problem(f"duplicate step id '{step.id}'", step=step.id, field="id"))
        by_id[step.id] = step
    if doc.start not in by_id:
        broken.append(Problem(f"start step '{doc.start}' does not exist", field="start"))
    for step in doc.steps:
        broken += [Problem(f"points to unknown step '{target}'", step=step.id, field=field)
                   for field, target in edges(step) if target is not None and target not in by_id]
    problems = broken + _content_problems(doc, known_models) + _timezone_problems(doc)
    if not broken:  # the graph walks need every edge to resolve
        problems += _reachability_problems(doc, by_id) + _cycle_problems(doc, by_id)
    return problems


def _content_problems(doc: CareModelDocument, known_models: set[str] | None) -> list[Problem]:
    problems = []
    for step in doc.steps:
        for field in ("subject", "body", "message"):
            error = check_template(getattr(step, field, "") or "")
            if error:
                problems.append(Problem(f"template error: {error}", step=step.id, field=field))
        if step.kind == "move":
            if step.care_model == doc.id:
                problems.append(Problem("a care model cannot move a lead into itself", step=step.id,
                                        field="care_model"))
            elif known_models is not None and step.care_model not in known_models:
                problems.append(Problem(f"care model '{step.care_model}' is not published", step=step.id,
                                        field="care_model"))
    return problems


def _timezone_problems(doc: CareModelDocument) -> list[Problem]:
    try:
        ZoneInfo(doc.settings.default_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return [Problem(f"unknown time zone '{doc.settings.default_timezone}' (use an IANA name like "
                        "'Europe/Berlin')", field="settings.default_timezone")]
    return []


def _reachability_problems(doc: CareModelDocument, by_id: dict[str, Any]) -> list[Problem]:
    seen: set[str] = set()
    todo = [doc.start]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        todo.extend(t for _, t in edges(by_id[current]) if t is not None)
    return [Problem("no path from the start reaches this step", step=s.id) for s in doc.steps if s.id not in seen]


def _cycle_problems(doc: CareModelDocument, by_id: dict[str, Any]) -> list[Problem]:
    """A loop must pass through a waiting step, or a lead would spin (and send) without pause."""
    graph = {
        sid: [t for _, t in edges(step) if t is not None and by_id[t].kind not in WAITING_KINDS]
        for sid, step in by_id.items()
        if step.kind not in WAITING_KINDS
    }
    problems: list[Problem] = []
    reported: set[frozenset[str]] = set()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    path = " -> ".join([*cycle, nxt])
                    problems.append(Problem(f"loop {path} has no wait step; add a wait so leads pause",
                                            step=nxt))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for sid in graph:
        if sid not in state:
            visit(sid)
    return problems


def _locate(err: ErrorDetails, data: Any, node: yaml.Node | None) -> Problem:
    loc = list(err["loc"])
    path: list[str | int] = []
    cursor = data
    for part in loc:
        if isinstance(cursor, dict) and isinstance(part, str) and part not in cursor and part in (
            cursor.get("kind"), cursor.get("type")
        ):
            continue  # the discriminator tag pydantic adds to the location, not a real key
        path.append(part)
        cursor = cursor.get(part) if isinstance(cursor, dict) else (
            cursor[part] if isinstance(cursor, list) and isinstance(part, int) and part < len(cursor) else None
        )
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] in _TAG_ERRORS:
        path.append("kind" if len(path) == 2 and path[0] == "steps" else "type")
    step, field = _split_step(path, data)
    return Problem(message, step=step, field=field, line=_line_of(node, path))


def _split_step(path: list[str | int], data: Any) -> tuple[str | None, str | None]:
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        raw_steps = data.get("steps") if isinstance(data, dict) else None
        raw = raw_steps[path[1]] if isinstance(raw_steps, list) and path[1] < len(raw_steps) else None
        step_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        rest = ".".join(str(p) for p in path[2:]) or None
        return step_id or f"#{path[1] + 1}", rest
    return None, ".".join(str(p) for p in path) or None


def _with_line(problem: Problem, data: Any, node: yaml.Node | None, occurrence: int = 0) -> Problem:
    if node is None or not problem.step:
        path: list[str | int] = list(problem.field.split(".")) if problem.field else []
        return Problem(problem.message, problem.step, problem.field, _line_of(node, path))
    steps = data.get("steps", [])
    indexes = [i for i, s in enumerate(steps) if isinstance(s, dict) and s.get("id") == problem.step]
    if len(indexes) <= occurrence:
        return problem
    index = indexes[occurrence]
    path = ["steps", index, *[int(p) if p.isdigit() else p for p in (problem.field or "").split(".") if p]]
    return Problem(problem.message, problem.step, problem.field, _line_of(node, path))


def _line_of(node: yaml.Node | None, path: list[str | int]) -> int | None:
    """1-based line of the deepest node along the path that exists in the source."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in path:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if match is None:
                break
            line = next(k for k, v in node.value if v is match).start_mark.line + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
