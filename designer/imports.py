"""The CSV upload page: a file in, each column mapped to a lead field or an attribute with a preview of what the
rows become and every problem named, then the import with progress. The import itself is workflows.imports."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, HTTPException, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from designer.auth import actor, allow
from designer.deps import audit, settings, temporal_or_none
from designer.deps import store as store_of
from designer.templating import TEMPLATES
from engine.imports import IGNORE, LEAD_FIELDS, column_key, guess_mapping, read_leads
from workflows.imports import ImportReport, import_leads

router = APIRouter(include_in_schema=False)
WRITE = allow("leads:write")
PREVIEW = 5
MAX_BYTES = 50 * 1024 * 1024


@dataclass
class Running:
    done: int = 0
    total: int = 0
    report: ImportReport | None = None
    error: str = ""
    rows: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _folder(request: Request) -> Path:
    return settings(request).data_dir / "imports"


def _text(request: Request, digest: str) -> str:
    path = _folder(request) / f"{digest}.csv"
    if not re.fullmatch(r"[0-9a-f]{16}", digest) or not path.exists():
        raise HTTPException(404, "this upload is gone: upload the file again")
    return path.read_text(encoding="utf-8")


def _mapping(form: dict[str, str], columns: list[str]) -> dict[str, str]:
    guessed = guess_mapping(columns)
    return {c: form.get(f"map.{n}", guessed[c]) for n, c in enumerate(columns)}


def _context(request: Request, digest: str, mapping: dict[str, str] | None, enrol: str = "") -> dict[str, Any]:
    text = _text(request, digest)
    found = read_leads(text, mapping, store_of(request).lead_id_by_email)
    mapping = mapping or guess_mapping(found.columns)
    targets = [("", "skip this column"), *((f, f"lead {f}") for f in LEAD_FIELDS)]
    options = [[*targets, (f"attributes.{column_key(c) or 'column'}", f"attribute {column_key(c) or 'column'}")]
               for c in found.columns]
    return {"digest": digest, "columns": found.columns, "mapping": mapping, "options": options,
            "preview": found.leads[:PREVIEW], "leads": len(found.leads), "rows": found.rows,
            "problems": [str(p) for p in found.problems], "enrol": enrol,
            "care_models": [v.care_model for v in store_of(request).latest_versions()],
            "running": _runs(request).get(digest)}


def _runs(request: Request) -> dict[str, Running]:
    return request.app.state.__dict__.setdefault("imports", {})


@router.get("/leads/import", response_class=HTMLResponse, dependencies=[WRITE])
def upload_page(request: Request) -> Response:
    return TEMPLATES.TemplateResponse(request, "leads/import.html", {"digest": ""})


@router.post("/leads/import", dependencies=[WRITE])
async def upload(request: Request, file: Annotated[UploadFile, File()]) -> Response:
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise HTTPException(413, "the file is over 50 MB: split it, or send it with `nurture import leads`")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, f"{file.filename} is not UTF-8 text (byte {exc.start}): save it as CSV UTF-8") \
            from None
    digest = hashlib.sha256(data).hexdigest()[:16]
    _folder(request).mkdir(parents=True, exist_ok=True)
    (_folder(request) / f"{digest}.csv").write_bytes(data)
    return RedirectResponse(f"/leads/import/{digest}", status_code=303)


@router.get("/leads/import/{digest}", response_class=HTMLResponse, dependencies=[WRITE])
def mapping_page(request: Request, digest: str) -> Response:
    return TEMPLATES.TemplateResponse(request, "leads/import.html", _context(request, digest, None))


@router.post("/leads/import/{digest}", response_class=HTMLResponse, dependencies=[WRITE])
async def preview(request: Request, digest: str) -> Response:
    """A changed mapping: the preview and the problems again, nothing imported."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    columns = read_leads(_text(request, digest)).columns
    context = _context(request, digest, _mapping(form, columns), form.get("enrol", ""))
    return TEMPLATES.TemplateResponse(request, "leads/import.html", context, block_names=["mapping"])


@router.post("/leads/import/{digest}/run", response_class=HTMLResponse, dependencies=[WRITE])
async def run(request: Request, digest: str) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items()}
    text = _text(request, digest)
    mapping = _mapping(form, read_leads(text).columns)
    enrol = form.get("enrol") or None
    if enrol is not None and store_of(request).latest(enrol) is None:
        raise HTTPException(422, f"care model '{enrol}' is not published")
    runs = _runs(request)
    if digest in runs and runs[digest].report is None and not runs[digest].error:
        return _progress(request, digest)  # already under way: a second click does not start a second import
    state = runs[digest] = Running()
    client, store, queue, who = await temporal_or_none(request), store_of(request), settings(request).task_queue, \
        actor(request)

    def progress(done: int, total: int) -> None:
        state.done, state.total = done, total

    async def work() -> None:
        try:
            state.report = await import_leads(client, store, text, {c: t for c, t in mapping.items() if t != IGNORE}
                                              or None, enrol, queue, progress)
            audit(request).add(who, "leads.imported", "leads", **{k: v for k, v in asdict(state.report).items()
                                                                  if k != "problems"}, enrol=enrol)
        except Exception as exc:  # shown on the page; the import can be run again and picks up where it stopped
            state.error = f"{type(exc).__name__}: {exc}"

    task = asyncio.get_running_loop().create_task(work())
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
    return _progress(request, digest)


@router.get("/leads/import/{digest}/progress", response_class=HTMLResponse, dependencies=[WRITE])
def progress_block(request: Request, digest: str) -> Response:
    return _progress(request, digest)


def _progress(request: Request, digest: str) -> Response:
    return TEMPLATES.TemplateResponse(request, "leads/import.html",
                                      {"digest": digest, "running": _runs(request).get(digest)},
                                      block_names=["progress"])
