"""The floors of the house: every import points down (or sideways within a package), and no module cycle exists.

Imports inside functions count too: a lazy import is still a dependency, only a hidden one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lowest floor first. A package may import its own modules and those of the floors below it.
FLOORS = ["engine", "store", "connectors", "workflows", "designer", "nurture"]
LEAVES = {"nurture.settings"}  # read by anyone, imports none of ours


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for floor in FLOORS for p in (ROOT / floor).rglob("*.py")}
    return {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}


def floor(module: str) -> int:
    return FLOORS.index(module.split(".")[0])


def upward(edges: dict[str, set[str]]) -> list[str]:
    return [f"{a} imports {b}" for a, targets in sorted(edges.items()) for b in sorted(targets)
            if b not in LEAVES and floor(b) > floor(a)]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_every_import_points_down_a_floor() -> None:
    assert upward(graph()) == [], "move the shared code down to the lowest floor both sides may import"


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(graph()) == []


def test_the_checker_finds_a_lazy_upward_import_and_a_cycle(tmp_path: Path) -> None:
    lazy = tmp_path / "m.py"
    lazy.write_text("def f():\n    from designer.app import create_app\n")
    assert {"designer.app", "designer.app.create_app"} <= imports_of(lazy), "imports inside functions count"
    edges = {"store.store": {"designer.app", "nurture.settings"}, "designer.app": {"workflows.client"},
             "workflows.client": {"designer.app"}}
    assert upward(edges) == ["store.store imports designer.app", "workflows.client imports designer.app"]
    assert cycles(edges) == [["designer.app", "workflows.client", "designer.app"]]
