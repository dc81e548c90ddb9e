"""`nurture backup` and `nurture restore`: a copy taken while Nurture runs brings the app database back exactly,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.lead import LeadState
from nurture.cli import main
from store.store import Store


def test_a_backup_restores_the_leads_it_held_and_drops_what_came_after(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("NURTURE_DATABASE_URL", url)
    monkeypatch.setenv("NURTURE_DATA_DIR", str(tmp_path))
    store.upsert_lead(LeadState(id="kept", email="kept@example.com", attributes={"company": "Acme"}))
    folder = tmp_path / "backup"
    assert main(["backup", str(folder)]) == 0  # while the store is open and in use
    assert "backed up" in capsys.readouterr().out
    assert json.loads((folder / "backup.json").read_text())["schema_version"] >= 8
    store.upsert_lead(LeadState(id="later", email="later@example.com"))
    store.upsert_lead(LeadState(id="kept", email="changed@example.com"))
    store.engine.dispose()  # Nurture is stopped for a restore
    assert main(["restore", str(folder)]) == 0
    again = Store.open(url)
    kept = again.get_lead("kept")
    assert kept is not None and (kept.email, kept.attributes) == ("kept@example.com", {"company": "Acme"})
    assert again.get_lead("later") is None
    again.engine.dispose()
    assert main(["restore", str(tmp_path / "nowhere")]) == 2
    assert "holds no Nurture backup" in capsys.readouterr().err
