"""Leads come in from a CSV file, through the API and the command line: every bad row reported by line, column
and reason, the good ones imported, rows about one person merged, and a repeated import changing nothing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from engine.imports import guess_mapping, read_leads
from engine.lead import LeadState
from nurture.cli import main
from store.store import Store
from tests.conftest import Harness

CSV = """E-mail,First name,Company,Stage,Fit
{ada}@acme.test,Ada,Acme,prospect,10
bad-address,Bob,Bobco,prospect,5
{cy}@acme.test,Cy,Cyco,champion,3
{ADA}@ACME.test,,Acme Ltd,,
,Nobody,Nowhere,,
{dee}@acme.test,Dee,Deeco,mql,lots
{eve}@acme.test,Eve,Eveco,,
"""


def test_columns_map_to_lead_fields_or_attributes_and_rows_about_one_person_merge() -> None:
    assert guess_mapping(["E-mail", "First name", "Lead ID", "Time zone", "Fit"]) == {
        "E-mail": "email", "First name": "attributes.first_name", "Lead ID": "id", "Time zone": "timezone",
        "Fit": "fit"}
    found = read_leads(CSV.format(ada="ada", ADA="ADA", cy="cy", dee="dee", eve="eve"),
                       known_email=lambda email: "crm-7" if email == "eve@acme.test" else None)
    assert found.rows == 7
    assert [str(p) for p in found.problems] == [
        "line 3, column 'E-mail': 'bad-address' is not one email address",
        "line 4, column 'Stage': Input should be 'suspect', 'prospect', 'mql', 'sal', 'sql', 'opportunity' or "
        "'customer'",
        "line 6: no id and no email: nothing says who this lead is",
        "line 7, column 'Fit': Input should be a valid number, unable to parse string as a number"]
    ada, eve = found.leads
    assert (ada.id, ada.stage, ada.fit, ada.attributes) == (
        "ada@acme.test", "prospect", 10, {"first_name": "Ada", "company": "Acme Ltd"})  # lines 2 and 5, merged
    assert found.lines["ada@acme.test"] == [2, 5]
    assert eve.id == "crm-7", "a row without an id updates the lead already stored with that address"
    assert [str(p) for p in read_leads("first_name\nAda\n").problems] == [
        "line 1: no column is the lead's id or email: map one of them"]


async def test_an_import_with_bad_rows_brings_in_the_rest_enrols_them_and_repeats_as_a_no_op(
        designer: httpx.AsyncClient, nurture: Harness) -> None:
    api = designer
    tag = uuid.uuid4().hex[:6]
    names = {k: f"{k.lower()}-{tag}" for k in ("ada", "cy", "dee", "eve")} | {"ADA": f"ADA-{tag}"}
    nurture.store.upsert_lead(LeadState(id=f"crm-{tag}", email=f"eve-{tag}@acme.test", stage="mql"))
    welcome = {"schema_version": 1, "id": f"imported-{tag}", "name": "Imported", "start": "end",
               "steps": [{"id": "end", "kind": "exit", "reason": "welcomed"}]}
    assert (await api.post("/api/care-models", json=welcome)).status_code == 201
    text = CSV.format(**names)

    first = (await api.post(f"/api/imports/leads?enrol=imported-{tag}", content=text,
                            headers={"content-type": "text/csv"})).json()
    assert (first["rows"], first["created"], first["updated"], first["enrolled"]) == (7, 1, 1, 2)
    assert len(first["problems"]) == 4 and first["problems"][0].startswith("line 3, column 'E-mail'")
    ada = nurture.store.get_lead(f"ada-{tag}@acme.test")
    assert ada is not None and ada.attributes == {"first_name": "Ada", "company": "Acme Ltd"}
    eve = nurture.store.get_lead(f"crm-{tag}")
    assert eve is not None and eve.attributes == {"first_name": "Eve", "company": "Eveco"} and eve.stage == "mql"
    assert nurture.store.get_lead(f"eve-{tag}@acme.test") is None, "matched by address, not made twice"
    for lead in (f"ada-{tag}@acme.test", f"crm-{tag}"):  # let the runs end before the test does
        await nurture.finish(nurture.env.client.get_workflow_handle(f"nurture/imported-{tag}/{lead}"))

    again = (await api.post(f"/api/imports/leads?enrol=imported-{tag}", content=text,
                            headers={"content-type": "text/csv"})).json()
    assert (again["created"], again["updated"], again["unchanged"], again["enrolled"]) == (0, 0, 2, 0)
    assert len(nurture.store.enrolments(care_model=f"imported-{tag}")) == 2

    refused = await api.post("/api/imports/leads?enrol=nowhere", content=text, headers={"content-type": "text/csv"})
    assert refused.status_code == 422 and "care model 'nowhere' is not published" in refused.text


def test_the_command_line_imports_with_progress_and_reports_bad_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("NURTURE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NURTURE_TEMPORAL_ADDRESS", "127.0.0.1:1")
    rows = "\n".join(f"lead-{i},lead-{i}@acme.test,Co {i}" for i in range(2500))
    good = tmp_path / "leads.csv"
    good.write_text(f"id,email,company\n{rows}\nbroken,not-an-address,X\n")
    assert main(["import", "leads", str(good)]) == 1
    out, err = capsys.readouterr()
    assert "1000 of 2500 leads" in err and "2500 of 2500 leads" in err
    assert f"{good}: line 2502, column 'email': 'not-an-address' is not one email address" in out
    assert "2501 rows: 2500 created, 0 updated, 0 unchanged; 1 problem(s) above" in out
    store = Store.open(f"sqlite:///{tmp_path / 'nurture.db'}")
    assert store.get_lead("lead-2499") is not None and store.get_lead("lead-2499").attributes == {"company": "Co 2499"}
    assert main(["import", "leads", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err


async def test_the_upload_page_maps_columns_previews_the_leads_and_imports_with_progress(
        designer: httpx.AsyncClient, nurture: Harness) -> None:
    tag = uuid.uuid4().hex[:6]
    text = f"Email,First name,Notes\nann-{tag}@acme.test,Ann,call back\nnot-an-address,Bob,x\nbo-{tag}@acme.test,Bo,\n"
    uploaded = await designer.post("/leads/import", files={"file": ("leads.csv", text.encode(), "text/csv")})
    assert uploaded.status_code == 303
    page = (await designer.get(uploaded.headers["location"])).text
    assert "<b>2</b> leads from 3 rows" in page and "line 3, column &#39;Email&#39;: &#39;not-an-address&#39;" in page
    assert '<option value="attributes.notes" selected>' in page, "an unknown column becomes an attribute of its name"
    skip_notes = {"map.0": "email", "map.1": "attributes.first_name", "map.2": ""}
    preview = await designer.post(uploaded.headers["location"], data=skip_notes)
    assert "first_name: Ann</td>" in preview.text and "notes" not in preview.text.split("Problems")[0].split(
        "Preview")[1]
    started = await designer.post(f"{uploaded.headers['location']}/run", data=skip_notes)
    assert started.status_code == 200
    for _ in range(100):
        shown = (await designer.get(f"{uploaded.headers['location']}/progress")).text
        if "Imported:" in shown:
            break
        await asyncio.sleep(0.05)
    assert "Imported: 2 created, 0 updated, 0 unchanged; 1 row left out." in shown
    ann = nurture.store.get_lead(f"ann-{tag}@acme.test")
    assert ann is not None and ann.attributes == {"first_name": "Ann"}, "the skipped column stayed out"
    bad = await designer.post("/leads/import", files={"file": ("x.csv", b"\xff\xfe\x00a", "text/csv")})
    assert bad.status_code == 422 and "x.csv is not UTF-8 text" in bad.text
