"""Lays a care model out as a vertical flow: rows by depth, branches side by side, loops drawn apart on the
right. Works on drafts too: edges to missing steps are simply not drawn. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.editing import START, all_edges, steps

COL_W, ROW_H, NODE_W, NODE_H, PAD = 250, 120, 200, 64, 30


@dataclass
class Node:
    id: str
    kind: str
    row: int
    col: int
    x: int = 0
    y: int = 0


@dataclass
class Edge:
    source: str
    field: str
    target: str | None
    label: str
    path: str
    back: bool
    plus: tuple[int, int]  # where the "add a step here" button sits
    label_at: tuple[int, int] = (0, 0)


@dataclass
class Layout:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0


def layout(doc: dict[str, Any]) -> Layout:
    by_id = {str(s.get("id")): s for s in steps(doc)}
    children: dict[str, list[tuple[str, str | None, str]]] = {START: []}
    for source, fld, target, label in all_edges(doc):
        children.setdefault(source, []).append((fld, target if target in by_id else None, label))

    # Depth-first from the start: edges to a step still on the path are loops ("back" edges).
    order: list[str] = []
    back: set[tuple[str, str]] = set()
    state: dict[str, int] = {}

    def visit(node: str) -> None:
        state[node] = 1
        for fld, target, _ in children.get(node, []):
            if target is None:
                continue
            if state.get(target) == 1:
                back.add((node, fld))
            elif target not in state:
                visit(target)
        state[node] = 2
        order.append(node)

    visit(START)
    for sid in by_id:  # unreachable steps still get drawn, below the rest
        if sid not in state:
            visit(sid)
    order.reverse()

    row: dict[str, int] = {START: 0}
    for node in order:
        for fld, target, _ in children.get(node, []):
            if target is not None and (node, fld) not in back:
                row[target] = max(row.get(target, 0), row.get(node, 0) + 1)
    for node in order:
        row.setdefault(node, 1)

    col: dict[str, int] = {}
    used: dict[int, int] = {}  # row -> next free column at or right of which to place

    def place(node: str, want: int) -> None:
        if node in col:
            return
        c = max(want, used.get(row[node], 0))
        col[node] = c
        used[row[node]] = c + 1
        for i, (fld, target, _) in enumerate(children.get(node, [])):
            if target is not None and (node, fld) not in back:
                place(target, c + i)

    place(START, 0)
    for node in order:
        place(node, 0)
    _untangle(order, row, col, [(n, t) for n in order for f, t, _ in children.get(n, [])
                                 if t is not None and (n, f) not in back])

    out = Layout()
    for node in order:
        kind = "start" if node == START else str(by_id[node].get("kind", "?"))
        n = Node(node, kind, row[node], col[node])
        n.x, n.y = PAD + n.col * COL_W, PAD + n.row * ROW_H
        out.nodes[node] = n
    right = PAD + (max(col.values()) + 1) * COL_W
    loops = 0
    for node in order:
        src = out.nodes[node]
        ways = children.get(node, [])
        for i, (fld, target, label) in enumerate(ways):
            # Several ways out leave from points spread along the node's bottom, so none hides another.
            sx, sy = src.x + NODE_W * (i + 1) // (len(ways) + 1), src.y + NODE_H
            if target is None:
                ex, ey = sx, sy + 40
                out.edges.append(Edge(node, fld, None, label, f"M{sx},{sy} L{ex},{ey}", False, (ex, ey),
                                      (sx + 6, sy + 16)))
                continue
            dst = out.nodes[target]
            tx, ty = dst.x + NODE_W // 2, dst.y
            if (node, fld) in back:
                loops += 1
                lane = right - COL_W // 2 + 30 + loops * 14
                path = (f"M{src.x + NODE_W},{src.y + NODE_H // 2} L{lane},{src.y + NODE_H // 2} "
                        f"L{lane},{dst.y + NODE_H // 2} L{dst.x + NODE_W},{dst.y + NODE_H // 2}")
                out.edges.append(Edge(node, fld, target, label, path, True, (lane, (src.y + dst.y) // 2 + NODE_H // 2),
                                      (lane + 4, src.y + NODE_H // 2 - 4)))
            elif dst.row > src.row + 1 and dst.col <= src.col:
                # Skips rows in the same column: go down the gap beside the nodes it would cross.
                gap = src.x + NODE_W + 18 + 8 * i
                path = (f"M{sx},{sy} L{sx},{sy + 14} L{gap},{sy + 14} L{gap},{ty - 16} L{tx},{ty - 16} "
                        f"L{tx},{ty}")
                # Several such edges share the gap: their + buttons stand at different heights along it.
                plus_y = sy + 14 + (ty - sy - 30) * (i + 1) // (len(ways) + 1)
                out.edges.append(Edge(node, fld, target, label, path, False, (gap, plus_y), (sx + 4, sy + 1)))
            else:
                mid = sy + (ty - sy) // 2 if ty > sy else sy + 20
                path = f"M{sx},{sy} L{sx},{mid} L{tx},{mid} L{tx},{ty}"
                out.edges.append(Edge(node, fld, target, label, path, False, ((sx + tx) // 2, mid),
                                      (sx + 4, sy + 1)))
    out.width = right + 60 + loops * 14
    out.height = PAD + (max(row.values()) + 1) * ROW_H + 40
    return out


def _untangle(order: list[str], row: dict[str, int], col: dict[str, int], edges: list[tuple[str, str]]) -> None:
    """Fewer crossings: a few barycentre sweeps reorder each row by where its neighbours stand, then each
    node takes the column nearest that mean that its left neighbour leaves free (so chains stay straight)."""
    parents: dict[str, list[str]] = {}
    kids: dict[str, list[str]] = {}
    for a, b in edges:
        parents.setdefault(b, []).append(a)
        kids.setdefault(a, []).append(b)
    rows: dict[int, list[str]] = {}
    for node in sorted(order, key=lambda n: col[n]):
        rows.setdefault(row[node], []).append(node)
    levels = sorted(rows)
    for sweep in range(4):
        down = sweep % 2 == 0
        for level in (levels if down else reversed(levels)):
            near = parents if down else kids

            def centre(node: str, near: dict[str, list[str]] = near) -> float:
                others = near.get(node, [])
                return sum(col[o] for o in others) / len(others) if others else col[node]

            nodes = sorted(rows[level], key=centre)
            last = -1
            for node in nodes:
                col[node] = max(last + 1, round(centre(node)))
                last = col[node]
            rows[level] = nodes
