"""A known population through a split with a holdout, on the time-skipping server: the report (API, page, CSV)
shows exactly the counts, rates and verdicts the script made, and declaring a winner makes the expected draft."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
from playwright.async_api import async_playwright
from sqlalchemy import delete

from store.rollups import rebuild
from store.tables import ArmRollup, DeliveryRow, Handover, Lead, StageChange, StepRollup
from tests.conftest import Harness
from tests.test_builders_browser import AXE
from tests.test_designer_browser import ARTIFACTS, CHROMIUM_ARGS

LEADS = 120


async def test_the_report_shows_what_a_known_population_did(designer: httpx.AsyncClient, nurture: Harness) -> None:
    tag = uuid.uuid4().hex[:6]
    model = f"ab-{tag}"
    version = nurture.publish(f"""
        schema_version: 1
        id: {model}
        name: Subject line test
        start: split
        settings:
          goals: [{{name: reached MQL, when: {{type: stage, op: at_least, stages: [mql]}}}}]
        steps:
          - {{id: split, kind: split, holdout: 0.2, holdout_next: wait,
             variants: [{{name: A, weight: 1, next: mail-a}}, {{name: B, weight: 1, next: mail-b}}]}}
          - {{id: mail-a, kind: email, subject: Plain, body: "<a href='https://acme.test/a'>Read</a>", next: wait}}
          - {{id: mail-b, kind: email, subject: Bold, body: "<a href='https://acme.test/b'>Read</a>", next: wait}}
          - {{id: wait, kind: wait, duration: 7d, next: end}}
          - {{id: end, kind: exit, reason: done}}
        """)
    leads = [nurture.lead(f"{tag}-{n}", email=f"{tag}-{n}@example.com") for n in range(LEADS)]
    handles = [(await nurture.enrol(version, lead))[1] for lead in leads]
    arm: dict[str, str] = {}
    for _ in range(400):  # every run has split and sent before the script reacts
        arm = {j.lead_id: j.outcome for j in nurture.store.journey() if j.care_model == model and j.step == "split"}
        sent = [o for o in nurture.store.outbox() if o.care_model == model]
        if len(arm) == LEADS and len(sent) == sum(1 for a in arm.values() if a != "holdout"):
            break
        await asyncio.sleep(0.05)
    names = {lead: "holdout" if a == "holdout" else a.removeprefix("variant '").rstrip("'") for lead, a in arm.items()}
    # The script: in B every second lead becomes an MQL, in A every fifth, in the holdout every tenth; in each
    # variant every third lead opens its email and every fourth clicks.
    converted: set[str] = set()
    counters = {"A": 0, "B": 0, "holdout": 0}
    keys = {o.lead_id: o.key for o in nurture.store.outbox() if o.care_model == model}
    opened, clicked = {"A": 0, "B": 0}, {"A": 0, "B": 0}
    for lead in leads:
        name = names[lead.id]
        counters[name] += 1
        n = counters[name]
        if name != "holdout" and n % 3 == 0:
            await nurture.event(lead, "email.opened", {"message": keys[lead.id]})
            opened[name] += 1
        if name != "holdout" and n % 4 == 0:
            await nurture.event(lead, "email.clicked", {"message": keys[lead.id], "url": "https://acme.test"})
            clicked[name] += 1
        if n % {"A": 5, "B": 2, "holdout": 10}[name] == 0:
            await nurture.event(lead, "lead.updated", {"stage": "mql"})
            converted.add(lead.id)
    await nurture.days(8)
    for handle in handles:
        await nurture.finish(handle)

    sizes = {name: sum(1 for v in names.values() if v == name) for name in ("A", "B", "holdout")}
    wins = {name: sum(1 for lead, v in names.items() if v == name and lead in converted) for name in sizes}
    got = (await designer.get(f"/api/care-models/{model}/report")).json()
    assert (got["enrolled"], got["converted"]) == (LEADS, len(converted))
    daily = got["daily"]
    assert (sum(d["entered"] for d in daily), sum(d["converted"] for d in daily)) == (LEADS, len(converted))
    steps = {(s["step"]): s for s in got["steps"]}
    assert steps["wait"]["kind"] == "wait", "a goal met while waiting is noted at the wait, which stays a wait"
    assert steps["split"]["entered"] == LEADS and steps["split"]["passed"] == LEADS
    assert steps["mail-a"]["entered"] == sizes["A"] and steps["mail-b"]["entered"] == sizes["B"]
    assert steps["wait"]["converted"] == len(converted) and steps["wait"]["exited"] == len(converted)
    assert steps["end"]["entered"] == LEADS - len(converted)
    assert abs(steps["wait"]["median_seconds"] / (7 * 86400) - 1) < 0.01  # kept in 1 % buckets
    mails = {m["step"]: m for m in got["messages"]}
    for name, step in (("A", "mail-a"), ("B", "mail-b")):
        m = mails[step]
        assert (m["sent"], m["delivered"], m["opened"], m["clicked"]) == (sizes[name], sizes[name], opened[name],
                                                                            clicked[name])
        assert m["rates"]["clicked"] == round(clicked[name] / sizes[name], 4)
    variants = got["experiments"]["split"]["variants"]
    assert [(a["name"], a["leads"], a["conversions"]) for a in variants["arms"]] == [
        ("A", sizes["A"], wins["A"]), ("B", sizes["B"], wins["B"])]
    assert variants["decided"] is False and variants["words"].startswith("Not enough data yet: each arm needs")
    holdout = got["experiments"]["split"]["holdout"]
    assert [(a["name"], a["leads"]) for a in holdout["arms"]] == [("holdout", sizes["holdout"]),
                                                                   ("treated", sizes["A"] + sizes["B"])]

    # A database made before the totals were kept gets them from its history (migration 9): the same report.
    with nurture.store.engine.begin() as conn:
        conn.execute(delete(StepRollup))
        conn.execute(delete(ArmRollup))
        rebuild(conn)
    assert (await designer.get(f"/api/care-models/{model}/report")).json() == got

    page = (await designer.get(f"/designer/{model}/report")).text
    assert f"<b>{LEADS}</b> leads entered; <b>{len(converted)}</b> reached a goal" in page
    assert "Not enough data yet" in page and "Declare" not in page, "no winner button before the horizon"
    await looked_at_in_chromium(page, f"report-{nurture.store.engine.dialect.name}",
                                "#experiment-split-variants svg circle", 2)
    canvas = (await designer.get(f"/designer/{model}?figures=true")).text
    assert f'id="mail-mail-b" title="sent · opened (estimate) · clicked">✉ {sizes["B"]} · {opened["B"]} · ' \
           f'{clicked["B"]}</span>' in canvas, "the message figures on the canvas, on demand"
    assert 'id="mail-mail-b"' not in (await designer.get(f"/designer/{model}")).text
    await looked_at_in_chromium(canvas, f"canvas-figures-{nurture.store.engine.dialect.name}", ".nums.mail", 2)
    refreshed = (await designer.get(f"/designer/{model}/numbers?figures=true")).text
    assert f'✉ {sizes["A"]} · {opened["A"]} · {clicked["A"]}</span>' in refreshed
    csv = (await designer.get(f"/designer/{model}/report.csv?table=experiments")).text
    assert f"split,variants,B,{sizes['B']},{wins['B']}," in csv

    declared = await designer.post(f"/designer/{model}/report/winner", data={"step": "split", "variant": "B"})
    assert declared.status_code == 303
    draft = (await designer.get(f"/designer/{model}/export")).text
    assert "holdout" not in draft and "name: A" not in draft and "name: B" in draft
    bad = await designer.post(f"/designer/{model}/report/winner", data={"step": "split", "variant": "C"})
    assert bad.status_code == 422 and "no variant 'C'" in bad.text


async def looked_at_in_chromium(html: str, name: str, shows: str, count: int) -> None:
    """The page as Chromium draws it (styles are in the page), checked with axe-core and kept as a screenshot."""
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        tab = await browser.new_page(viewport={"width": 1280, "height": 800})
        await tab.set_content(html)
        await tab.evaluate(AXE.read_text())
        found = await tab.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id)""")
        assert not found, found
        assert await tab.locator(shows).count() == count
        ARTIFACTS.mkdir(exist_ok=True)
        await tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        await browser.close()


async def test_the_funnel_and_the_handover_report_count_a_known_history(designer: httpx.AsyncClient,
                                                                        nurture: Harness) -> None:
    day = 86400.0
    start = datetime(2026, 11, 2, 9, tzinfo=UTC)  # a Monday: ISO week 45
    tag = uuid.uuid4().hex[:6]
    paths = {"paid search": [("prospect", 1), ("mql", 3), ("sal", 4)], "organic search": [("prospect", 2)]}
    with nurture.store.session() as s:
        for n in range(10):
            source = "paid search" if n < 4 else "organic search"
            lead_id = f"{tag}-{n}"
            s.add(Lead(id=lead_id, email=f"{lead_id}@example.com", attributes={"source": source},
                       created_at=start, stage="suspect"))
            stage = "suspect"
            for to, days in paths[source][:2 if n == 3 else None]:  # lead 3 stops at MQL
                s.add(StageChange(lead_id=lead_id, from_stage=stage, to_stage=to, at=start.timestamp() + days * day))
                stage = to
        s.add(DeliveryRow(key=f"{tag}-enrol", lead_id=f"{tag}-0", kind="enrol", care_model="welcome",
                          event={"id": "e", "type": "form.submitted", "at": start.timestamp(), "data": {}},
                          created_at=start.timestamp()))
        decisions = [("accepted", "", 2), ("accepted", "", 30), ("rejected", "too small", 5), ("expired", "", 50)]
        for n, (status, reason, hours) in enumerate(decisions):
            opened = start.timestamp() + 3 * day
            s.add(Handover(key=f"{tag}/h{n}", lead_id=f"{tag}-{n}", care_model="m", step="to-sales", team=f"t-{tag}",
                           routing="round_robin", status=status, reason=reason, opened_at=opened,
                           due_at=opened + 24 * 3600, closed_at=opened + hours * 3600, rep_id=f"rep-{n % 2}-{tag}"))
    by_source = (await designer.get("/api/reports/funnel?by=source")).json()
    paid = {r["stage"]: r for r in by_source["paid search"]}
    assert [paid[s]["leads"] for s in ("suspect", "prospect", "mql", "sal", "sql")][:4] == [4, 4, 4, 3]
    assert paid["sal"]["from_previous"] == 0.75 and paid["mql"]["median_days_from_previous"] == 2.0
    organic = {r["stage"]: r for r in by_source["organic search"]}
    assert (organic["prospect"]["leads"], organic["mql"]["leads"]) == (6, 0)
    assert organic["prospect"]["median_days_from_previous"] == 2.0
    by_entry = (await designer.get("/api/reports/funnel?by=entry_event")).json()
    assert by_entry["form.submitted"][0]["leads"] == 1 and by_entry["none"][0]["leads"] == 9
    table = (await designer.get("/reports/funnel.csv?by=source")).text.splitlines()
    assert table[0] == "group,stage,leads,from_previous,median_days_from_previous"
    assert "paid search,sal,3,0.75,1.0" in table
    cohorts = (await designer.get("/api/reports/funnel?by=cohort")).json()
    assert cohorts["2026-W45"][0]["leads"] == 10
    wrong = await designer.get("/api/reports/funnel?by=colour")
    assert wrong.status_code == 422 and "Choose one of care_model" in wrong.json()["detail"][0]["msg"]

    answered = (await designer.get("/api/reports/handovers")).json()
    assert answered["rejected_by_reason"] == {"too small": 1} and answered["recycled"]["leads"] == 1
    team = answered["by_team"][f"t-{tag}"]
    assert (team["handovers"], team["accepted"], team["rejected"], team["expired"]) == (4, 2, 1, 1)
    assert team["sla_breaches"] == 2, "decided after 30 hours, and expired after 50, against a 24-hour SLA"
    assert team["median_hours_to_decision"] == 5.0, "of the decided ones: 2, 5 and 30 hours"
    assert f"team,t-{tag},4,0,2,1,1,2,5.0" in (await designer.get("/reports/handovers.csv")).text
    page = (await designer.get("/reports?by=source")).text
    assert 'id="funnel-paid search"' in page and "4 leads" in page
