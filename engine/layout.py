"""Lays a care model out as a vertical flow: rows by depth, branches side by side, loops drawn apart on the
right. Works on drafts too: edges to missing steps are simply not drawn. Pure."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.editing import START, all_edges, steps

COL_W, ROW_H, NODE_W, NODE_H, PAD = 250, 136, 200, 64, 40
GAP = COL_W - NODE_W  # the free run between two columns, where row-skipping edges go down
LABEL_H, LABEL_MAX, PLUS = 13, 100, 22


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
    points: list[tuple[int, int]]
    back: bool
    plus: tuple[int, int] = (0, 0)  # where the "add a step here" button sits
    label_at: tuple[int, int] = (0, 0)

    @property
    def path(self) -> str:
        return "M" + " L".join(f"{x},{y}" for x, y in self.points)


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
    last_col = {r: max(col[n] for n in order if row[n] == r) for r in set(row.values())}
    later: list[tuple[Edge, list[list[tuple[int, int]]]]] = []  # edges with a choice of route, chosen last
    loops = 0
    for node in order:
        src = out.nodes[node]
        ways = children.get(node, [])
        for i, (fld, target, label) in enumerate(ways):
            # Several ways out leave from points spread along the node's bottom, so none hides another.
            sx, sy = src.x + NODE_W * (i + 1) // (len(ways) + 1), src.y + NODE_H
            if target is None:
                out.edges.append(Edge(node, fld, None, label, [(sx, sy), (sx, sy + 40)], False))
                continue
            dst = out.nodes[target]
            tx, ty = dst.x + NODE_W // 2, dst.y
            # Several ways out turn at different heights, so their labels and + buttons have room.
            turn = sy + (ty - sy) // 2 if len(ways) == 1 else sy + 14 + 13 * i
            edge = Edge(node, fld, target, label, [], (node, fld) in back or ty <= sy)
            out.edges.append(edge)
            if edge.back:
                # A loop runs to a lane right of everything: out of the step's side when nothing stands right of
                # it in its row, else down into the gap below; in again the same way. Gaps only: no step crossed.
                loops += 1
                lane = right - GAP // 2 + 8 * (loops - 1)
                if last_col[src.row] == src.col:
                    start = [(src.x + NODE_W, src.y + NODE_H // 2 + 6 * i), (lane, src.y + NODE_H // 2 + 6 * i)]
                else:
                    start = [(sx, sy), (sx, sy + 8 + 5 * (loops % 4)), (lane, sy + 8 + 5 * (loops % 4))]
                if last_col[dst.row] == dst.col:
                    end = [(lane, dst.y + NODE_H // 2), (dst.x + NODE_W, dst.y + NODE_H // 2)]
                else:
                    end = [(lane, ty - 10 - 5 * (loops % 4)), (tx, ty - 10 - 5 * (loops % 4)), (tx, ty)]
                edge.points = start + end
            elif dst.row == src.row + 1:
                edge.points = [(sx, sy), (sx, turn), (tx, turn), (tx, ty)]
            else:
                # Skips rows: down a column gap, beside the steps between; which gap is chosen below.
                turn = sy + 14 + 13 * i if len(ways) > 1 else sy + 14
                gaps = {c * COL_W + PAD - GAP // 2 for c in range(min(src.col, dst.col), max(src.col, dst.col) + 2)}
                later.append((edge, [
                    [(sx, sy), (sx, turn), (gap, turn), (gap, ty - 16), (tx, ty - 16), (tx, ty)] for gap in sorted(
                        gaps, key=lambda g: abs(g - tx))]))
    # Each row-skipping edge takes the gap where it crosses the fewest edges drawn so far (the nearest on a tie);
    # edges sharing a gap run side by side.
    lanes: dict[int, int] = {}
    for edge, routes in later:
        others = [e for e in out.edges if e.points and e is not edge]
        best = min(routes, key=lambda r: sum(_cross(a, b) for o in others for a in itertools.pairwise(r)
                                             for b in itertools.pairwise(o.points)))
        gap = best[2][0]
        shift = 7 * lanes.get(gap, 0) - 7 * (lanes.get(gap, 0) > 0)
        lanes[gap] = lanes.get(gap, 0) + 1
        edge.points = [best[0], best[1], (gap + shift, best[2][1]), (gap + shift, best[3][1]), best[4], best[5]]
    _place_marks(out)
    out.width = right + 40 + loops * 8
    out.height = PAD + (max(row.values()) + 1) * ROW_H + 40
    return out


Box = tuple[int, int, int, int]  # x, y, width, height


def label_width(text: str) -> int:
    """About how wide an edge label draws at the canvas's label size (the CSS cuts longer ones to this)."""
    return min(len(text) * 6 + 8, LABEL_MAX)


def _hits(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _along(points: list[tuple[int, int]], step: int = 4) -> list[tuple[int, int, bool]]:
    """Points every `step` pixels along an orthogonal path, with whether the segment there is vertical."""
    out = []
    for (x1, y1), (x2, y2) in itertools.pairwise(points):
        length = abs(x2 - x1) + abs(y2 - y1)
        for d in range(0, length + 1, step):
            t = d / length if length else 0
            out.append((round(x1 + (x2 - x1) * t), round(y1 + (y2 - y1) * t), x1 == x2))
    return out


def _place_marks(out: Layout) -> None:
    """Each edge's + on its own run, then its label near where it leaves its step, each where it overlaps no step,
    no other label and no other + (or, in a crowd, where it overlaps least)."""
    taken, lines = _Grid(), _Grid()
    for n in out.nodes.values():
        taken.add((n.x - 2, n.y - 2, NODE_W + 4, NODE_H + 4))
    for k, e in enumerate(out.edges):
        for a, b in itertools.pairwise(e.points):
            lines.add(_line(a, b), owner=k)
    for k, e in enumerate(out.edges):
        spots = _along(e.points, 2)
        middle = len(spots) // 2
        # From the middle outwards, so the + sits on the edge's run rather than at either end; and not where
        # another edge runs or crosses, so it is plain which edge it adds to.
        ordered = [spots[i] for i in sorted(range(len(spots)), key=lambda i: (abs(i - middle), i))]
        box = _freest([(x - PLUS // 2, y - PLUS // 2, PLUS, PLUS) for x, y, _ in ordered],
                      functools.partial(_crowding, taken, lines, k))
        e.plus = (box[0] + PLUS // 2, box[1] + PLUS // 2)
        taken.add(box)
    for e in out.edges:
        if not e.label:
            continue
        width = label_width(e.label)
        boxes = [box for x, y, vertical in _along(e.points) for box in (
            [(x + 3, y + 1, width, LABEL_H), (x - width - 3, y + 1, width, LABEL_H)] if vertical
            else [(x + 2, y - LABEL_H - 1, width, LABEL_H), (x + 2, y + 2, width, LABEL_H)])]
        box = _freest(boxes, taken.overlap)
        e.label_at = box[0], box[1]
        taken.add(box)


class _Grid:
    """Boxes bucketed by area, so asking what a box overlaps looks only nearby: layout stays fast at 200 steps."""

    CELL = 64

    def __init__(self) -> None:
        self.cells: dict[tuple[int, int], list[tuple[int, Box, int | None]]] = {}
        self.count = 0

    def _keys(self, box: Box) -> list[tuple[int, int]]:
        x0, y0 = box[0] // self.CELL, box[1] // self.CELL
        x1, y1 = (box[0] + box[2]) // self.CELL, (box[1] + box[3]) // self.CELL
        return [(cx, cy) for cx in range(x0, x1 + 1) for cy in range(y0, y1 + 1)]

    def add(self, box: Box, owner: int | None = None) -> None:
        self.count += 1
        for key in self._keys(box):
            self.cells.setdefault(key, []).append((self.count, box, owner))

    def overlap(self, box: Box, skip: int | None = None) -> int:
        """The area of `box` covered by the boxes here (those of `skip` aside)."""
        seen: set[int] = set()
        area = 0
        for key in self._keys(box):
            for ident, other, owner in self.cells.get(key, ()):
                if ident in seen or (skip is not None and owner == skip):
                    continue
                seen.add(ident)
                area += max(0, min(box[0] + box[2], other[0] + other[2]) - max(box[0], other[0])) * max(
                    0, min(box[1] + box[3], other[1] + other[3]) - max(box[1], other[1]))
        return area


def _crowding(taken: _Grid, lines: _Grid, edge: int, box: Box) -> int:
    """What a + would cover: marks and steps, and the runs of edges other than its own."""
    return taken.overlap(box) + lines.overlap(box, skip=edge)


def _line(a: tuple[int, int], b: tuple[int, int]) -> Box:
    return min(a[0], b[0]) - 1, min(a[1], b[1]) - 1, abs(a[0] - b[0]) + 2, abs(a[1] - b[1]) + 2


def _freest(candidates: list[Box], overlap: Callable[[Box], int]) -> Box:
    """The first candidate that overlaps nothing taken, or else the one that overlaps least."""
    best, least = candidates[0], None
    for box in candidates:
        area = overlap(box)
        if area == 0:
            return box
        if least is None or area < least:
            best, least = box, area
    return best


def crossings(lay: Layout) -> int:
    """How many times one edge crosses another: what the layout tries to keep low."""
    segments = [list(itertools.pairwise(e.points)) for e in lay.edges]
    count = 0
    for i, mine in enumerate(segments):
        for theirs in segments[i + 1:]:
            count += sum(_cross(a, b) for a in mine for b in theirs)
    return count


def _cross(a: tuple[tuple[int, int], tuple[int, int]], b: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    if a[0][0] == a[1][0] and b[0][1] == b[1][1]:
        vertical, horizontal = a, b
    elif a[0][1] == a[1][1] and b[0][0] == b[1][0]:
        vertical, horizontal = b, a
    else:
        return False
    x, y = vertical[0][0], horizontal[0][1]
    return (min(horizontal[0][0], horizontal[1][0]) < x < max(horizontal[0][0], horizontal[1][0])
            and min(vertical[0][1], vertical[1][1]) < y < max(vertical[0][1], vertical[1][1]))


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
