"""The designer's pages and htmx fragments. Thin: edits go through engine.editing, checks through the validator,
publishing through the compiler (Store.publish); each route renders one template or some of its blocks."""

from __future__ import annotations

import json
import logging
import time
import zoneinfo
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

import yaml
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError

from designer import structured
from designer.assets import EXAMPLES_DIR
from designer.auth import actor, allow, principal
from designer.deps import audit, connectors, known_events, settings, store, temporal_or_none
from designer.forms import (
    build_form,
    read_form,
    read_settings,
    read_settings_form,
    settings_errors,
    summary,
    yaml_error,
)
from designer.sales import journey_timeline
from designer.sales_api import lead_visible
from designer.templating import TEMPLATES, to_yaml
from engine import editing, samples
from engine.advice import advice
from engine.changes import compare, diff_lines, normalise
from engine.document import CareModelDocument
from engine.durations import format_duration
from engine.layout import layout
from engine.lead import LeadIn
from engine.lifecycle import STAGES
from engine.steps import MoveStep
from engine.validator import DocumentError, check, parse_text
from store.designs import Designs, draft_hash
from store.sales import SalesStore
from store.tables import PublishRequest
from workflows.client import migrate_runs
from workflows.merges import merge_leads
from workflows.simulate import format_offset, parse_script, simulate

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
READ, WRITE, PUBLISH = allow("care-models:read"), allow("care-models:write"), allow("care-models:publish")


def _render(request: Request, name: str, context: dict[str, Any], blocks: list[str] | None = None,
            status: int = 200) -> Response:
    if blocks:
        return TEMPLATES.TemplateResponse(request, name, context, block_names=blocks, status_code=status)
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)


def _designs(request: Request) -> Designs:
    return Designs(store(request))


def _save(request: Request, model: str, doc: dict[str, Any], what: str) -> None:
    """Every save is a revision in the draft's history, so Undo can take it back."""
    _designs(request).save(model, doc, by=actor(request), what=what)


def _free_id(request: Request, base: str) -> str:
    model, n = base, 1
    while _designs(request).draft(model) is not None:
        n += 1
        model = f"{base[:60]}-{n}"
    return model


def _doc(request: Request, model: str) -> dict[str, Any]:
    doc = _designs(request).draft(model)
    if doc is None:
        raise HTTPException(404, f"no care model '{model}'")
    return doc


def editor(request: Request, model: str, doc: dict[str, Any] | None = None, selected: str | None = None,
           form: Any = None, chooser: dict[str, str] | None = None, saved: bool = False,
           sim: list[Any] | None = None, settings_errors: list[str] | None = None,
           problems: list[Any] | None = None, settings_text: str | None = None, asked: dict[str, Any] | None = None
           ) -> dict[str, Any]:
    doc = doc if doc is not None else _doc(request, model)
    if problems is None:
        _, problems = check(doc)
    by_step: dict[str, list[str]] = {}
    for p in problems:
        if p.step:
            by_step.setdefault(p.step, []).append(f"{p.field + ': ' if p.field else ''}{p.message}")
    labels = editing.labels(doc)
    chosen = editing.find(doc, selected) if selected else None
    if chosen is not None and form is None:
        form = build_form(chosen, _ids(doc), _field_errors(problems, selected or ""), labels)
    attributes = store(request).attribute_names()  # the builder's suggestions and the merge-field picker
    latest = store(request).latest(model)
    sim_steps: dict[str, str] = {}
    sim_edges: set[tuple[str, str | None]] = set()
    previous = editing.START
    sim_order: dict[str, int] = {}
    for s in sim or []:
        sim_steps.setdefault(s.step, format_offset(s.offset).strip())
        sim_order.setdefault(s.step, len(sim_order) + 1)
        if previous != s.step:
            sim_edges.add((previous, s.step))
        previous = s.step
    movable = [] if chooser is None else [
        s["id"] for s in editing.steps(doc) if len(editing.out_edges(s)) == 1 and s.get("id") != chooser["source"]]
    return {
        "model": model, "doc": doc, "layout": layout(doc), "steps_by_id": {str(s.get("id")): s for s in
                                                                             editing.steps(doc)},
        "problems": [str(p) for p in problems], "problems_by_step": by_step, "selected": selected, "form": form,
        "warnings": [] if problems else _warnings(request, doc),
        "chooser": chooser, "saved": saved, "kinds": editing.KINDS, "movable": movable,
        "movable_ids": {str(s.get("id")) for s in editing.steps(doc) if len(editing.out_edges(s)) == 1},
        "numbers": _designs(request).numbers(model), "latest": latest,
        "changed": latest is None or normalise(latest.document) != normalise(doc), "summary": summary,
        "sim_steps": sim_steps, "sim_edges": sim_edges, "sim_order": sim_order,
        "settings_errors": settings_errors or [],
        "settings_yaml": settings_text if settings_text is not None else _settings_yaml(doc), "labels": labels,
        "settings_open": settings_text is not None,
        "entry_label": _entry_label(doc), "history": _history(request, model), "asked": asked,
        "choices": _choices(request, attributes), "timezones": TIMEZONES, "typed_settings": None,
        "recent_leads": _designs(request).search_leads("", limit=30) if form is not None else [],
        "merge_fields": _merge_fields(attributes) if form is not None else [],
    }


def _merge_fields(attributes: list[str]) -> list[str]:
    """What the content editor's picker inserts: the built-in lead fields, attributes seen, and the scores."""
    built_in = ["first_name", "last_name", "company", "email", "stage", "id"]
    seen = [a for a in attributes if a not in built_in]
    return [f"lead.{name}" for name in built_in + seen] + [f"scores.{s}" for s in ("total", "fit", "engagement")]


TIMEZONES = sorted(zoneinfo.available_timezones())


def _choices(request: Request, attributes: list[str]) -> dict[str, list[str]]:
    """What the condition builder offers: attribute names seen on leads, event types seen or declared."""
    return {"attributes": attributes, "events": sorted(known_events(request)), "stages": list(STAGES),
            "scores": ["total", "fit", "engagement"]}


def _settings_yaml(doc: dict[str, Any]) -> str:
    raw = doc.get("settings")
    return to_yaml(raw) if raw else ""


def _entry_label(doc: dict[str, Any]) -> str:
    """What starts the care model, read leniently: the start node shows it whatever the draft holds."""
    raw = doc.get("settings")
    entry = raw.get("entry") if isinstance(raw, dict) else None
    event = entry.get("event") if isinstance(entry, dict) else entry if isinstance(entry, str) else None
    return str(event) if event else "enrolled by API"


def _history(request: Request, model: str) -> dict[str, str]:
    """What Undo and Redo would take back or bring back, for their buttons."""
    undo, redo = _designs(request).undo_redo(model)
    return {"undo": undo, "redo": redo}


def _warnings(request: Request, doc: dict[str, Any]) -> list[str]:
    """What may not do what the marketer means (a misspelt event, a sales outcome with no next step)."""
    try:
        parsed = CareModelDocument.model_validate(doc)
    except ValidationError:
        return []
    teams = {r.team for r in SalesStore(store(request)).reps() if r.active}
    try:
        installed: set[str] | None = set(connectors(request))
    except Exception:  # a connector file that does not load is the admin page's to report, not the designer's
        installed = None
    return [str(w) for w in advice(parsed, known_events(request), teams, installed)]


def _ids(doc: dict[str, Any]) -> list[str]:
    return [str(s.get("id")) for s in editing.steps(doc)]


def _field_errors(problems: list[Any], step_id: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for p in problems:
        if p.step == step_id:
            errors.setdefault((p.field or "").split(".")[0], []).append(p.message)
    return errors


def _panel_and_canvas(request: Request, context: dict[str, Any], status: int = 200) -> Response:
    context["oob"] = True
    return _render(request, "designer/editor.html", context, ["panel", "canvas", "problems", "history"], status)


# --- the list, new models, templates, import ------------------------------------------------------------


def _templates() -> list[dict[str, str]]:
    out = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        out.append({"file": path.stem, "name": data.get("name", path.stem)})
    return out


@router.get("/designer", response_class=HTMLResponse, dependencies=[READ])
def index(request: Request, q: str = "", archived: bool = False, import_problems: list[str] | None = None,
          clash: dict[str, str] | None = None, done: str = "") -> Response:
    context = {"models": _designs(request).names(q, archived), "templates": _templates(), "q": q,
               "archived": archived, "import_problems": import_problems or [], "clash": clash, "done": done}
    blocks = ["models"] if request.headers.get("hx-target") == "models" else None
    return _render(request, "designer/index.html", context, blocks,
                   status=422 if import_problems else 409 if clash else 200)


@router.post("/designer/new", dependencies=[WRITE])
def new(request: Request, name: Annotated[str, Form()]) -> RedirectResponse:
    model = _free_id(request, editing.slug(name))
    _save(request, model, editing.blank(model, name.strip() or model), "created")
    return RedirectResponse(f"/designer/{model}", status_code=303)


@router.post("/designer/templates/{name}", dependencies=[WRITE])
def from_template(request: Request, name: str) -> RedirectResponse:
    """Always a new care model: a template never replaces one somebody is editing."""
    path = EXAMPLES_DIR / f"{name}.yaml"
    if not path.exists() or path.parent != EXAMPLES_DIR:
        raise HTTPException(404, f"no template '{name}'")
    doc = yaml.safe_load(path.read_text())
    current = _designs(request).draft(doc["id"])
    if current is not None and normalise(current) == normalise(doc):
        return RedirectResponse(f"/designer/{doc['id']}", status_code=303)  # nothing to lose: open that one
    model = _free_id(request, doc["id"])
    if model != doc["id"]:
        doc |= {"id": model, "name": f"{doc.get('name', model)} ({model.rsplit('-', 1)[-1]})"}
    _save(request, model, doc, f"created from the template '{name}'")
    return RedirectResponse(f"/designer/{model}", status_code=303)


@router.post("/designer/import", dependencies=[WRITE])
async def import_document(request: Request, file: Annotated[UploadFile, File()]) -> Response:
    text = (await file.read()).decode("utf-8", errors="replace")
    return _import(request, text, file.filename or "the file", "")


@router.post("/designer/import/confirm", dependencies=[WRITE])
def import_confirmed(request: Request, text: Annotated[str, Form()], choice: Annotated[str, Form()],
                     filename: Annotated[str, Form()] = "the file") -> Response:
    return _import(request, text, filename, choice)


def _import(request: Request, text: str, filename: str, choice: str) -> Response:
    """A file whose id is taken asks first: replace that draft (Undo brings it back) or import it as a copy."""
    data, _, problems = parse_text(text)
    if problems or not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        messages = [str(p) for p in problems] or ["the document needs an 'id' (a slug such as 'welcome-nurture')"]
        return index(request, import_problems=[f"{filename}: {m}" for m in messages])
    model = data["id"]
    current = _designs(request).draft(model)
    if current is not None and current != data:
        if choice == "copy":
            model = _free_id(request, model)
            data = {**data, "id": model}
        elif choice != "replace":
            return index(request, clash={"model": model, "text": text, "filename": filename,
                                         "name": str(current.get("name") or model)})
    _save(request, model, data, f"imported from {filename}")
    return RedirectResponse(f"/designer/{model}", status_code=303)


@router.post("/designer/{model}/duplicate", dependencies=[WRITE])
def duplicate(request: Request, model: str) -> RedirectResponse:
    doc = _doc(request, model)
    copy_id = _free_id(request, f"{model[:58]}-copy")
    _save(request, copy_id, {**doc, "id": copy_id, "name": f"{doc.get('name') or model} (copy)"},
          f"duplicated from '{model}'")
    return RedirectResponse(f"/designer/{copy_id}", status_code=303)


@router.post("/designer/{model}/archive", dependencies=[PUBLISH])
def archive(request: Request, model: str, restore: Annotated[bool, Form()] = False) -> RedirectResponse:
    """Archived: off the list, and no new leads; leads already in it carry on. Restore undoes it."""
    try:
        _designs(request).archive(model, not restore)
    except KeyError:
        raise HTTPException(404, f"no care model '{model}'") from None
    audit(request).add(actor(request), "care-model.restored" if restore else "care-model.archived",
                       f"care-model:{model}")
    return RedirectResponse(f"/designer?done={'restored' if restore else 'archived'}+{model}", status_code=303)


@router.post("/designer/{model}/delete", dependencies=[WRITE])
def delete_model(request: Request, model: str) -> Response:
    _doc(request, model)
    try:
        _designs(request).delete(model)
    except ValueError as exc:
        return index(request, import_problems=[str(exc)])
    audit(request).add(actor(request), "care-model.deleted", f"care-model:{model}")
    return RedirectResponse(f"/designer?done=deleted+{model}", status_code=303)


# --- the editor ----------------------------------------------------------------------------------------


@router.get("/designer/{model}", response_class=HTMLResponse, dependencies=[READ])
def edit(request: Request, model: str, step: str | None = None, done: str = "", figures: bool = False) -> Response:
    return _or_recover(request, model, lambda doc: _render(
        request, "designer/editor.html", editor(request, model, doc, selected=step) | {"done": done,
                                                                                      "figures": figures}))


def _or_recover(request: Request, model: str, render: Callable[[dict[str, Any]], Response]) -> Response:
    """Whatever the stored draft holds, the marketer gets a page: the one asked for, or one to mend it from."""
    doc = _doc(request, model)
    try:
        return render(doc)
    except Exception as exc:
        log.exception("a designer page could not show the draft of %s", model)
        return _recover(request, model, doc, f"this page could not show the draft ({type(exc).__name__}: {exc})")


def _recover(request: Request, model: str, doc: dict[str, Any], problem: str, text: str | None = None,
             status: int = 200) -> Response:
    return _render(request, "designer/recover.html", {
        "model": model, "problem": problem, "history": _history(request, model),
        "text": text if text is not None else to_yaml(doc)}, status=status)


@router.post("/designer/{model}/yaml", response_class=HTMLResponse, dependencies=[WRITE])
def save_yaml(request: Request, model: str, text: Annotated[str, Form()]) -> Response:
    """The whole draft as YAML (the Advanced view): stored once it reads as a care model's mapping."""
    doc = _doc(request, model)
    data, _, problems = parse_text(text)
    if problems or data is None:
        return _recover(request, model, doc, "; ".join(str(p) for p in problems), text, 422)
    _save(request, model, {**data, "id": model}, "edited the YAML")
    return RedirectResponse(f"/designer/{model}", status_code=303)


@router.post("/designer/{model}/undo", dependencies=[WRITE])
def undo(request: Request, model: str, redo: Annotated[bool, Form()] = False) -> RedirectResponse:
    what = _designs(request).step_back(model, actor(request), forward=redo)
    done = f"{'Redone' if redo else 'Undone'}: {what}" if what else f"Nothing to {'redo' if redo else 'undo'}"
    return RedirectResponse(f"/designer/{model}?{urlencode({'done': done})}", status_code=303)


@router.get("/designer/{model}/numbers", response_class=HTMLResponse, dependencies=[READ])
def numbers(request: Request, model: str, figures: bool = False) -> HTMLResponse:
    found = _designs(request).numbers(model)
    spans = "".join(
        f'<span class="nums" id="nums-{step}" hx-swap-oob="true" title="here now · passed · converted">'
        f'{n["now"]} · {n["passed"]} · {n["converted"]}</span>' for step, n in found.items())
    if figures:  # the message figures, when the marketer asked for them on the canvas
        spans += "".join(
            f'<span class="nums mail" id="mail-{step}" hx-swap-oob="true" title="sent · opened (estimate) · '
            f'clicked">✉ {n["sent"]} · {n["opened"]} · {n["clicked"]}</span>'
            for step, n in found.items() if "sent" in n)
    return HTMLResponse(spans)


@router.get("/designer/{model}/steps/{step_id}", response_class=HTMLResponse, dependencies=[READ])
def step_form(request: Request, model: str, step_id: str) -> Response:
    context = editor(request, model, selected=step_id)
    if context["form"] is None:
        raise HTTPException(404, f"no step '{step_id}' in '{model}'")
    return _panel_and_canvas(request, context)


@router.post("/designer/{model}/steps/{step_id}", response_class=HTMLResponse, dependencies=[WRITE])
async def save_step(request: Request, model: str, step_id: str) -> Response:
    doc = _doc(request, model)
    step = editing.find(doc, step_id)
    if step is None:
        raise HTTPException(404, f"no step '{step_id}' in '{model}'")
    pairs = [(k, str(v)) for k, v in (await request.form()).multi_items()]
    new_step, yaml_errors = read_form(step, pairs)
    action = dict(pairs).get("action", "")
    if action:
        new_step = structured.apply(new_step, action)
    doc = editing.update(doc, step_id, new_step)
    # Saved even when invalid: nothing a marketer typed is lost, and the problems show until it is mended.
    _save(request, model, doc, f"edited '{new_step.get('name') or step_id}'")
    _, problems = check(doc)
    errors = _field_errors(problems, step_id)
    for name, messages in yaml_errors.items():
        errors[name] = messages  # the reason it did not read beats the schema's complaint about the text
    form = build_form(new_step, _ids(doc), errors, editing.labels(doc))
    context = editor(request, model, doc, selected=step_id, form=form, saved=True, problems=problems)
    if request.query_params.get("autosave"):  # a change as you type: leave the form alone, update the rest
        context |= {"oob": True, "autosaving": True, "sentences": structured.sentences(new_step)}
        return _render(request, "designer/editor.html", context, ["canvas", "problems", "field_errors", "history"],
                       422 if errors else 200)
    return _panel_and_canvas(request, context, 422 if errors else 200)


@router.post("/designer/{model}/steps/{step_id}/yaml", response_class=HTMLResponse, dependencies=[WRITE])
def save_step_yaml(request: Request, model: str, step_id: str, step_yaml: Annotated[str, Form()]) -> Response:
    """The step as YAML, under Advanced: what does not read is shown back as typed, with the line; the id stays
    (Rename changes it, with every edge that leads here)."""
    doc = _doc(request, model)
    if editing.find(doc, step_id) is None:
        raise HTTPException(404, f"no step '{step_id}' in '{model}'")
    try:
        data = yaml.safe_load(step_yaml)
        problem = None if isinstance(data, dict) else "write the step's fields, one per line, such as `subject: Hi`"
    except yaml.YAMLError as exc:
        data, problem = None, yaml_error(exc)
    if problem or not isinstance(data, dict):
        context = editor(request, model, doc, selected=step_id)
        return _panel_and_canvas(request, context | {"step_yaml": step_yaml, "step_yaml_error": problem}, 422)
    doc = editing.update(doc, step_id, {**data, "id": step_id})
    _save(request, model, doc, f"edited '{data.get('name') or step_id}' as YAML")
    return _panel_and_canvas(request, editor(request, model, doc, selected=step_id, saved=True))


@router.post("/designer/{model}/steps/{step_id}/delete", response_class=HTMLResponse, dependencies=[WRITE])
def delete_step(request: Request, model: str, step_id: str) -> Response:
    before = _doc(request, model)
    try:
        doc = editing.delete(before, step_id)
    except KeyError as exc:
        raise HTTPException(404, str(exc)) from None
    _save(request, model, doc, f"deleted '{editing.labels(before).get(step_id, step_id)}'")
    return _panel_and_canvas(request, editor(request, model, doc))


@router.post("/designer/{model}/steps/{step_id}/rename", response_class=HTMLResponse, dependencies=[WRITE])
def rename_step(request: Request, model: str, step_id: str, new_id: Annotated[str, Form()]) -> Response:
    """A new id for a step; the start and every edge that led to it follow."""
    doc = _doc(request, model)
    try:
        doc = editing.rename(doc, step_id, new_id)
    except KeyError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        context = editor(request, model, doc, selected=step_id)
        context["form"].errors["id"] = [str(exc)]
        return _panel_and_canvas(request, context | {"typed_id": new_id}, 422)
    new_id = new_id.strip()
    _save(request, model, doc, f"renamed step '{step_id}' to '{new_id}'")
    return _panel_and_canvas(request, editor(request, model, doc, selected=new_id, saved=True))


@router.get("/designer/{model}/insert", response_class=HTMLResponse, dependencies=[WRITE])
def choose_kind(request: Request, model: str, source: str, field: str) -> Response:
    return _panel_and_canvas(request, editor(request, model, chooser={"source": source, "field": field}))


@router.post("/designer/{model}/insert", response_class=HTMLResponse, dependencies=[WRITE])
def insert_step(request: Request, model: str, source: Annotated[str, Form()], field: Annotated[str, Form()],
                kind: Annotated[str, Form()], then: Annotated[str, Form()] = "") -> Response:
    """A step on an edge. A step with no way out (exit, move) in the middle of a path asks first what becomes of
    the steps after it: keep them for the other leads behind a branch, delete them, or keep them aside."""
    before = _doc(request, model)
    try:
        if then == "branch":
            doc, step_id = editing.insert_exit_branch(before, source, field, kind)
        else:
            doc, step_id = editing.insert(before, source, field, kind)
    except (KeyError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    lost = editing.cut_off(before, doc)
    if lost and then not in ("delete", "keep"):
        asked = {"source": source, "field": field, "kind": kind, "lost": [editing.labels(doc)[s] for s in lost]}
        return _panel_and_canvas(request, editor(request, model, before, asked=asked))
    if then == "delete":
        doc = editing.remove(doc, lost)
    _save(request, model, doc, f"added a {kind.replace('_', ' ')} step" + (
        f" and deleted the {len(lost)} step(s) after it" if then == "delete" else ""))
    return _panel_and_canvas(request, editor(request, model, doc, selected=step_id))


@router.post("/designer/{model}/steps/{step_id}/move", response_class=HTMLResponse, dependencies=[WRITE])
def move_step(request: Request, model: str, step_id: str, source: Annotated[str, Form()],
              field: Annotated[str, Form()]) -> Response:
    try:
        doc = editing.move(_doc(request, model), step_id, source, field)
    except (KeyError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    _save(request, model, doc, f"moved '{editing.labels(doc).get(step_id, step_id)}'")
    return _panel_and_canvas(request, editor(request, model, doc, selected=step_id))


@router.get("/designer/{model}/steps/{step_id}/copy", dependencies=[READ])
def copy_step(request: Request, model: str, step_id: str) -> dict[str, Any]:
    """What Copy puts on the browser's clipboard: the step, and for a branch the steps only it leads to."""
    doc = _doc(request, model)
    try:
        clipped = editing.clip(doc, step_id)
    except KeyError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"model": model, "label": editing.labels(doc)[step_id], "steps": clipped}


@router.post("/designer/{model}/paste", response_class=HTMLResponse, dependencies=[WRITE])
def paste_steps(request: Request, model: str, source: Annotated[str, Form()], field: Annotated[str, Form()],
                clip: Annotated[str, Form()]) -> Response:
    try:
        clipped = json.loads(clip).get("steps")
        doc, first = editing.paste(_doc(request, model), source, field, clipped if isinstance(clipped, list) else [])
    except (ValueError, AttributeError, KeyError) as exc:
        raise HTTPException(422, f"cannot paste: {exc}") from None
    _save(request, model, doc, f"pasted {len(clipped)} step{'s' if len(clipped) != 1 else ''}")
    return _panel_and_canvas(request, editor(request, model, doc, selected=first, saved=True))


@router.post("/designer/{model}/steps/{step_id}/duplicate", response_class=HTMLResponse, dependencies=[WRITE])
def duplicate_step(request: Request, model: str, step_id: str) -> Response:
    try:
        doc, copied = editing.duplicate(_doc(request, model), step_id)
    except KeyError as exc:
        raise HTTPException(404, str(exc)) from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    _save(request, model, doc, f"duplicated '{editing.labels(doc).get(step_id, step_id)}'")
    return _panel_and_canvas(request, editor(request, model, doc, selected=copied, saved=True))


@router.post("/designer/{model}/settings", response_class=HTMLResponse, dependencies=[WRITE])
async def save_settings(request: Request, model: str, check_only: bool = Query(False, alias="check")) -> Response:
    """Checked against the document model before it is stored: what does not fit is shown, as typed, with why.
    The form's builder buttons (add a goal, a condition) are edits like any other; `?check=1` only answers."""
    doc = dict(_doc(request, model))
    pairs = [(k, str(v)) for k, v in (await request.form()).multi_items()]
    form = dict(pairs)
    name, description = form.get("name", ""), form.get("description", "")
    typed: dict[str, Any] | None = None
    if "settings" in form:  # the Advanced YAML box
        parsed, errors = read_settings(form["settings"])
        if parsed is None:
            context = editor(request, model, doc, settings_errors=errors, settings_text=form["settings"])
            return _panel_and_canvas(request, context | {"typed_name": name, "typed_description": description}, 422)
    else:
        action = form.get("action", "")
        typed, errors = read_settings_form(pairs, doc.get("settings"))
        if action.startswith("when:") and "entry" not in typed:
            typed["entry"] = {}
        if action:
            typed = structured.apply(typed, action)
            errors = settings_errors(typed)
        if check_only:
            context = editor(request, model, doc) | {"oob": True, "checking": True, "settings_errors": errors,
                                                     "sentences": structured.sentences(typed)}
            return _render(request, "designer/editor.html", context, ["field_errors"], 422 if errors else 200)
        if errors:
            context = editor(request, model, doc, settings_errors=errors)
            return _panel_and_canvas(request, context | {"typed_name": name, "typed_description": description,
                                                         "typed_settings": typed}, 422)
        parsed = typed
    doc.update({"name": name.strip() or doc.get("name", model), "description": description})
    if parsed:
        doc["settings"] = parsed
    else:
        doc.pop("settings", None)
    _save(request, model, doc, "changed the settings")
    _, problems = check(doc)
    errors = [str(p) for p in problems if (p.field or "").startswith(("settings", "name"))]
    context = editor(request, model, doc, settings_errors=errors, problems=problems, saved=True)
    return _panel_and_canvas(request, context, 422 if errors else 200)


@router.get("/designer/{model}/export", dependencies=[READ])
def export(request: Request, model: str) -> PlainTextResponse:
    text = to_yaml(_doc(request, model))
    return PlainTextResponse(text, media_type="application/yaml",
                             headers={"content-disposition": f'attachment; filename="{model}.yaml"'})


# --- publish, versions, revert -------------------------------------------------------------------------


@router.get("/designer/{model}/publish", response_class=HTMLResponse, dependencies=[READ])
def publish_page(request: Request, model: str, error: str = "", status: int = 200,
                 chosen: dict[str, str] | None = None, ends: list[str] | None = None) -> Response:
    doc = _doc(request, model)
    latest = store(request).latest(model)
    _, problems = check(doc)
    in_flight = sorted(_designs(request).where_now(model).items())
    waiting: dict[str, int] = {}
    for (_, step), count in in_flight:
        waiting[step] = waiting.get(step, 0) + count
    requests = _designs(request).publish_requests(model)
    return _render(request, "designer/publish.html", {
        "model": model, "doc": doc, "latest": latest, "problems": [str(p) for p in problems],
        "changes": compare(latest.document if latest else None, doc), "waiting": waiting, "in_flight": in_flight,
        "new_steps": _ids(doc), "labels": editing.labels(doc), "kinds_by_id": _kinds(doc),
        "chosen": chosen or {}, "ends": ends or [], "warnings": _warnings(request, doc) if not problems else [],
        "approval": settings(request).publish_approval, "requests": requests[:10],
        "asked": _asked(request, model, doc), "error": error,
        "may_publish": principal(request).may("care-models:publish"),
        "may_ask": principal(request).may("care-models:write")}, status=status)


def _kinds(doc: dict[str, Any]) -> dict[str, str]:
    return {str(s.get("id")): str(s.get("kind")) for s in editing.steps(doc)}


def _migration_refusal(request: Request, model: str, doc: dict[str, Any], form: dict[str, str]
                       ) -> Response | None:
    """Moving leads needs a choice for each step the new version lacks, and a second yes when choices end
    journeys: nobody's journey ends by default."""
    mapping = {k.removeprefix("map:"): v for k, v in form.items() if k.startswith("map:")}
    waiting: dict[str, int] = {}
    for (_, step), count in _designs(request).where_now(model).items():
        waiting[step] = waiting.get(step, 0) + count
    steps, labels = _kinds(doc), editing.labels(doc)
    unchosen = [f"{n} lead{'s' if n != 1 else ''} at '{s}'" for s, n in sorted(waiting.items())
                if s not in steps and not mapping.get(s)]
    if unchosen:
        return publish_page(request, model, "choose where they continue: " + "; ".join(unchosen) + " (that step is "
                            "not in the new version)", 422, mapping)
    ends = [f"{n} lead{'s' if n != 1 else ''} at '{s}' go to '{labels[t]}' ({steps[t]})"
            for s, n in sorted(waiting.items()) if (t := mapping.get(s) or s) in steps
            and steps[t] in editing.TERMINAL]
    if ends and form.get("confirm_ends") != "yes":
        return publish_page(request, model, "", 409, mapping, ends)
    return None


def _asked(request: Request, model: str, doc: dict[str, Any]) -> PublishRequest | None:
    """The waiting request for exactly this draft, if someone asked to publish it."""
    digest = draft_hash(doc)
    return next((r for r in _designs(request).publish_requests(model) if r.status == "waiting" and r.hash == digest),
                None)


@router.post("/designer/{model}/publish-requests", dependencies=[WRITE])
def ask_to_publish(request: Request, model: str) -> Response:
    doc = _doc(request, model)
    _, problems = check(doc)
    if problems:
        return publish_page(request, model, f"fix the {len(problems)} problem(s) before asking", 422)
    row = _designs(request).ask_to_publish(model, doc, actor(request))
    audit(request).add(actor(request), "care-model.publish_requested", f"care-model:{model}", request=row.id)
    return RedirectResponse(f"/designer/{model}/publish", status_code=303)


@router.post("/designer/{model}/publish", response_class=HTMLResponse, dependencies=[PUBLISH])
async def publish(request: Request, model: str) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    doc = _doc(request, model)
    parsed, problems = check(doc)
    if parsed is None or problems:
        return publish_page(request, model)
    if form.get("mode") == "migrate" and (refusal := _migration_refusal(request, model, doc, form)) is not None:
        return refusal
    approved = None
    if settings(request).publish_approval:
        approved = _asked(request, model, doc)
        if approved is None:
            return publish_page(request, model, "this installation publishes only approved drafts, and nobody has "
                                                "asked to publish this one (an edit after a request voids it)", 409)
        if approved.requested_by == actor(request):
            return publish_page(request, model, "someone other than the person who asked must approve", 409)
    latest = store(request).latest(model)
    try:
        row = store(request).publish(parsed)
    except DocumentError as exc:
        raise HTTPException(422, str(exc)) from None
    if approved is not None:
        _designs(request).decide_request(approved.id or 0, "published", actor(request), f"version {row.version}")
    _save(request, model, row.document, f"published as version {row.version}")
    audit(request).add(actor(request), "care-model.published", f"care-model:{model}", version=row.version,
                       approved_request=approved.id if approved else None, asked_by=approved.requested_by if
                       approved else None, diff=diff_lines(latest.document if latest else None, row.document))
    moved = waiting = 0
    if form.get("mode") == "migrate":
        mapping = {k.removeprefix("map:"): v for k, v in form.items() if k.startswith("map:") and v}
        report = await migrate_runs(await temporal_or_none(request), store(request), row, mapping,
                                    settings(request).task_queue)
        moved, waiting = len(report.signalled), len(report.pending)
        audit(request).add(actor(request), "care-model.leads_migrated", f"care-model:{model}", version=row.version,
                           mapping=mapping, moved=moved, waiting=waiting)
    later = f"&waiting={waiting}" if waiting else ""
    return RedirectResponse(f"/designer/{model}/versions?published={row.version}&migrated={moved}{later}",
                            status_code=303)


@router.get("/designer/{model}/versions", response_class=HTMLResponse, dependencies=[READ])
def versions(request: Request, model: str, published: int | None = None, migrated: int = 0,
             waiting: int = 0, confirm: int | None = None) -> Response:
    rows = _designs(request).versions(model)
    diffs = {row.version: compare(rows[i + 1].document if i + 1 < len(rows) else None, row.document)
             for i, row in enumerate(rows)}
    return _render(request, "designer/versions.html", {"model": model, "rows": rows, "diffs": diffs,
                                                       "published": published, "migrated": migrated,
                                                       "waiting": waiting, "confirm": confirm},
                   status=409 if confirm else 200)


@router.post("/designer/{model}/versions/{number}/revert", dependencies=[PUBLISH])
def revert(request: Request, model: str, number: int, sure: Annotated[bool, Form()] = False) -> Response:
    """Asks first when the draft holds unpublished edits; Undo brings them back either way."""
    row = _designs(request).version(model, number)
    if row is None:
        raise HTTPException(404, f"'{model}' has no version {number}")
    latest = store(request).latest(model)
    if not sure and latest is not None and normalise(_doc(request, model)) != normalise(latest.document):
        return versions(request, model, confirm=number)
    _save(request, model, row.document, f"reverted to version {number}")
    audit(request).add(actor(request), "care-model.reverted", f"care-model:{model}", to_version=number)
    return RedirectResponse(f"/designer/{model}?done=Reverted+to+version+{number}", status_code=303)


# --- simulate --------------------------------------------------------------------------------------------

SAMPLE_LEAD = "id: sample-lead\nemail: sam@example.com\ntimezone: Europe/Berlin\nattributes:\n  first_name: Sam\n"
SAMPLE_EVENTS = "- {after: 2d, type: email.clicked}\n"


def _sample_lead(doc: dict[str, Any]) -> str:
    """The default sample lead, with what the entry rule asks for filled in (persona: executive, say)."""
    sample = yaml.safe_load(SAMPLE_LEAD)
    try:
        fits = samples.fitting(CareModelDocument.model_validate(doc))
    except ValidationError:
        fits = {}
    sample["attributes"] = {**sample["attributes"], **fits.pop("attributes", {})}
    return to_yaml(sample | fits)


def _sim_data(lead_yaml: str, events_yaml: str) -> tuple[dict[str, Any], list[Any]]:
    """The sample lead and events as the simulate form shows them; text that does not read gives empty ones."""
    try:
        lead = yaml.safe_load(lead_yaml) or {}
        events = yaml.safe_load(events_yaml) or []
    except yaml.YAMLError:
        return {}, []
    return (lead if isinstance(lead, dict) else {}), (events if isinstance(events, list) else [])


def _read_sim_form(pairs: list[tuple[str, str]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The simulate form's fields as a sample lead and a list of events (what the YAML under Advanced holds)."""
    form = dict(pairs)
    lead: dict[str, Any] = {k: form.get(f"lead.{k}", "").strip() for k in ("id", "email", "timezone", "stage")}
    lead = {k: v for k, v in lead.items() if v}
    for score in ("fit", "engagement"):
        if form.get(f"lead.{score}", "").strip():
            lead[score] = structured.number(form[f"lead.{score}"])
    attributes = structured.read_pairs(structured.unflatten(pairs, "lead.attributes"))
    if attributes:
        lead["attributes"] = attributes
    if form.get("lead.unsubscribed"):
        lead["unsubscribed"] = True
    events = []
    for row in structured.items(structured.unflatten(pairs, "events")):
        row = structured.as_dict(row)
        event: dict[str, Any] = {"after": str(row.get("after", "")).strip() or 0, "type": str(row.get("type", ""))}
        data = structured.read_pairs(row.get("data"))
        if data:
            event["data"] = data
        events.append(event)
    return lead, events


@router.get("/designer/{model}/simulate", response_class=HTMLResponse, dependencies=[READ])
def simulate_page(request: Request, model: str) -> Response:
    def render(doc: dict[str, Any]) -> Response:
        lead_yaml = _sample_lead(doc)
        context = editor(request, model, doc) | {"lead_yaml": lead_yaml, "events_yaml": SAMPLE_EVENTS,
                                                 "result": None, "sim_error": "", "as_if_enrolled": False}
        lead, events = _sim_data(lead_yaml, SAMPLE_EVENTS)
        return _render(request, "designer/simulate.html", context | {"sim_lead": lead, "sim_events": events})

    return _or_recover(request, model, render)


@router.post("/designer/{model}/simulate", response_class=HTMLResponse, dependencies=[WRITE])
async def run_simulation(request: Request, model: str) -> Response:
    """Runs the draft for a sample lead and scripted events, given by the form or as YAML (under Advanced)."""
    doc = _doc(request, model)
    pairs = [(k, str(v)) for k, v in (await request.form()).multi_items()]
    form = dict(pairs)
    as_if_enrolled = form.get("as_if_enrolled") == "true"
    if form.get("mode") == "form":
        lead_data, event_rows = _read_sim_form(pairs)
        if form.get("action"):  # + event, remove an event, + field: redraw the form, run nothing yet
            changed = structured.apply({"events": event_rows}, form["action"])
            return _render(request, "designer/simulate.html", editor(request, model, doc) | {
                "sim_lead": lead_data, "sim_events": changed["events"], "result": None, "sim_error": "",
                "as_if_enrolled": as_if_enrolled, "lead_yaml": to_yaml(lead_data), "events_yaml": to_yaml(
                    changed["events"])})
        lead, events = to_yaml(lead_data), to_yaml(event_rows)
    else:
        lead, events = form.get("lead", ""), form.get("events", "")
    parsed, problems = check(doc)
    sim_lead, sim_events = _sim_data(lead, events)
    context: dict[str, Any] = {"lead_yaml": lead, "events_yaml": events, "result": None, "sim_error": "",
                               "as_if_enrolled": as_if_enrolled, "sim_lead": sim_lead, "sim_events": sim_events}
    try:
        if parsed is None or problems:
            raise ValueError(f"fix the {len(problems)} problem(s) first: {problems[0]}")
        sample = LeadIn.model_validate(yaml.safe_load(lead) or {})
        script = parse_script(yaml.safe_load(events) or [])
        targets = {s.care_model for s in parsed.steps if isinstance(s, MoveStep)}
        others = [CareModelDocument.model_validate(v.document) for t in sorted(targets)
                  if (v := store(request).latest(t)) is not None]
        result = await simulate(parsed, sample.to_state(), script, sample.unsubscribed, others=others,
                                reps=SalesStore(store(request)).reps(), as_if_enrolled=as_if_enrolled)
    except ValidationError as exc:
        context["sim_error"] = "sample lead: " + "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    except (ValueError, yaml.YAMLError) as exc:
        context["sim_error"] = str(exc)
    else:
        context["result"] = result
        return _render(request, "designer/simulate.html", editor(request, model, doc, sim=result.steps) | context)
    return _render(request, "designer/simulate.html", editor(request, model, doc) | context, status=422)


# --- leads ---------------------------------------------------------------------------------------------


@router.get("/leads", response_class=HTMLResponse, dependencies=[allow("leads:read")])
def leads(request: Request, q: str = "", erased: str = "") -> Response:
    found = _designs(request).search_leads(q)
    blocks = ["results"] if request.headers.get("hx-request") and request.headers.get("hx-target") == "results" \
        else None
    return _render(request, "designer/leads.html", {"q": q, "found": found, "erased": erased}, blocks)


@router.post("/leads/{lead_id}/merge", dependencies=[allow("leads:write")])
async def merge_page(request: Request, lead_id: str, other: Annotated[str, Form()]) -> Response:
    db = store(request)
    other_id = db.lead_id_by_email(other) if "@" in other and db.get_lead(other.strip()) is None else other.strip()
    try:
        merged = await merge_leads(await temporal_or_none(request), db, lead_id, other_id or other, actor(request),
                                   time.time(), settings(request).task_queue)
    except (LookupError, ValueError) as exc:
        raise HTTPException(422, str(exc)) from None
    audit(request).add(actor(request), "lead.merged", f"lead:{merged.lead.id}", merged=other_id,
                       moved_runs=merged.moved_runs, duplicate_runs=merged.duplicate_runs)
    return RedirectResponse(f"/leads/{merged.lead.id}", status_code=303)


@router.get("/leads/{lead_id}", response_class=HTMLResponse, dependencies=[allow("leads:read", "handovers:own")])
def lead_page(request: Request, lead_id: str) -> Response:
    db = store(request)
    lead = db.get_lead(lead_id)
    sales = SalesStore(db)
    if not lead_visible(request, lead_id):
        lead = None  # a rep sees only the leads handed to them; others' look the same as no lead at all
    if lead is None:
        raise HTTPException(404, f"no lead '{lead_id}'")
    return _render(request, "designer/lead.html", {
        "lead": lead, "timeline": journey_timeline(db, sales, lead_id), "now": time.time(),
        "enrolments": db.enrolments(lead_id=lead_id), "deliveries": db.outbox(lead_id),
        "format_duration": format_duration})
