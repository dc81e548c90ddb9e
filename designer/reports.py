"""Results: a care model's report (per step, per message, per split) as a page, as JSON and as CSV. Thin: the
figures come from store.reports, the statistics from engine.experiments."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from designer.auth import actor, allow
from designer.deps import audit, invalid_input
from designer.deps import store as store_of
from designer.templating import TEMPLATES
from engine.editing import declare_winner
from engine.experiments import DEFAULT_LIFT
from store.designs import Designs
from store.reports import FUNNEL_BY, Report, experiments, funnel, handovers, report

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api")
READ = allow("reports:read")
Lift = Annotated[float, Query(gt=0, lt=1, description="the smallest difference in conversion rate worth acting "
                                                      "on, as a fraction: 0.1 is 10 points")]


def _report(request: Request, care_model: str, version: int | None, since: float | None,
            until: float | None) -> Report:
    if store_of(request).latest(care_model) is None:
        raise HTTPException(404, f"care model '{care_model}' is not published")
    return report(store_of(request), care_model, version, since, until)


@api.get("/care-models/{care_model}/report", dependencies=[READ])
def report_json(request: Request, care_model: str, version: int | None = None, since: float | None = None,
                until: float | None = None, lift: Lift = DEFAULT_LIFT) -> dict[str, Any]:
    """Per step and version: entered, here now, passed, exited, converted, median time in the step. Per message
    step: sent, delivered, bounced, opened (an estimate: privacy proxies open mail), unique clicks, unsubscribed,
    with rates. Per split: each arm and the holdout with intervals, p-values and a verdict in words. `since` and
    `until` (epoch seconds) pick leads by when they entered."""
    found = _report(request, care_model, version, since, until)
    return {"care_model": care_model, "enrolled": found.enrolled, "converted": found.converted,
            "daily": [{"day": day, "entered": n, "converted": won} for day, n, won in found.daily],
            "steps": [asdict(f) for f in found.steps],
            "messages": [asdict(m) | {"rates": m.rates} for m in found.messages],
            "experiments": {step: {name: asdict(v) for name, v in verdicts.items()}
                            for step, verdicts in experiments(found, lift).items()}}


@router.get("/designer/{care_model}/report", response_class=HTMLResponse, dependencies=[READ])
def report_page(request: Request, care_model: str, version: int | None = None, lift: Lift = DEFAULT_LIFT) -> Response:
    found = _report(request, care_model, version, None, None)
    return TEMPLATES.TemplateResponse(request, "designer/report.html", {
        "model": care_model, "report": found, "experiments": experiments(found, lift), "version": version,
        "lift": lift, "versions": [v.version for v in Designs(store_of(request)).versions(care_model)]})


@router.get("/designer/{care_model}/report.csv", dependencies=[READ])
def report_csv(request: Request, care_model: str, table: str = "steps", version: int | None = None) -> Response:
    found = _report(request, care_model, version, None, None)
    if table == "steps":
        rows = [asdict(f) for f in found.steps]
    elif table == "messages":
        rows = [asdict(m) | {f"{k}_rate": v for k, v in m.rates.items()} for m in found.messages]
    elif table == "experiments":
        rows = [{"step": step, "comparison": name, "arm": a.name, "leads": a.leads, "conversions": a.conversions,
                 "rate": a.rate, "low": a.low, "high": a.high, "prob_best": a.prob_best}
                for step, verdicts in experiments(found, DEFAULT_LIFT).items()
                for name, v in verdicts.items() for a in v.arms]
    else:
        raise HTTPException(404, f"no table '{table}': steps, messages or experiments")
    return _csv(rows, f"{care_model}-{table}")


def _csv(rows: list[dict[str, Any]], name: str) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else ["empty"])
    writer.writeheader()
    writer.writerows(rows)
    return PlainTextResponse(out.getvalue(), media_type="text/csv",
                             headers={"content-disposition": f'attachment; filename="{name}.csv"'})


@router.post("/designer/{care_model}/report/winner", dependencies=[allow("care-models:write")])
def winner(request: Request, care_model: str, step: Annotated[str, Form()],
           variant: Annotated[str, Form()]) -> Response:
    """A new draft with the winner at 100 %: publishing it is the usual review."""
    designs = Designs(store_of(request))
    draft = designs.draft(care_model)
    if draft is None:
        raise HTTPException(404, f"no care model '{care_model}'")
    try:
        changed = declare_winner(draft, step, variant)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    designs.save(care_model, changed, by=actor(request), what=f"declared '{variant}' the winner of '{step}'")
    audit(request).add(actor(request), "experiment.winner", f"care-model:{care_model}", step=step, variant=variant)
    return RedirectResponse(f"/designer/{care_model}", status_code=303)


@api.get("/reports/funnel", dependencies=[READ])
def funnel_json(request: Request, by: str | None = Query(None, description=f"one of {', '.join(FUNNEL_BY)}")
                ) -> dict[str, list[dict[str, Any]]]:
    """Per group: leads that reached each lifecycle stage (or a later one), the share of the stage before that
    went on, and the median days from the stage before."""
    try:
        return funnel(store_of(request), by)
    except ValueError as exc:
        raise invalid_input("query", str(exc), by, "by") from None


@api.get("/reports/handovers", dependencies=[READ])
def handovers_json(request: Request) -> dict[str, Any]:
    """Handovers by outcome, rejection reason, rep and team; SLA breaches; median hours to a decision; and what
    became of the leads sales rejected."""
    return handovers(store_of(request), time.time())


@router.get("/reports", response_class=HTMLResponse, dependencies=[READ])
def reports_page(request: Request, by: str | None = None) -> Response:
    try:
        groups = funnel(store_of(request), by or None)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return TEMPLATES.TemplateResponse(request, "reports.html", {
        "groups": groups, "by": by or "", "choices": FUNNEL_BY, "handovers": handovers(store_of(request), time.time())})


@router.get("/reports/funnel.csv", dependencies=[READ])
def funnel_csv(request: Request, by: str | None = None) -> Response:
    try:
        groups = funnel(store_of(request), by or None)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return _csv([{"group": name, **row} for name, rows in groups.items() for row in rows], f"funnel-{by or 'all'}")


@router.get("/reports/handovers.csv", dependencies=[READ])
def handovers_csv(request: Request) -> Response:
    found = handovers(store_of(request), time.time())
    rows = [{"by": kind, "name": name, **figures}
            for kind, group in (("rep", found["by_rep"]), ("team", found["by_team"]))
            for name, figures in group.items()]
    return _csv(rows, "handovers")
