"""Backups of the app database: SQLite through its online backup API (safe while Nurture runs), PostgreSQL
through pg_dump / pg_restore. Temporal keeps its own state: back it up with its own database (see README)."""

from __future__ import annotations

import glob
import json
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from store.db import make_engine, schema_version

SQLITE_FILE, PG_FILE, MANIFEST = "nurture.db", "nurture.dump", "backup.json"


def tool(name: str) -> str:
    """A PostgreSQL client program: on the PATH, or where Debian installs it."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)),
                                       None)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: install the PostgreSQL client programs")
    return found


def _pg_url(url: str) -> str:
    """libpq's form of the URL (SQLAlchemy's names the driver: postgresql+psycopg://)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def backup(url: str, folder: Path) -> Path:
    """Writes a consistent copy of the database at `url` into `folder` (made if missing); the file written."""
    folder.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url)
    version = schema_version(engine)
    engine.dispose()
    if url.startswith("sqlite"):
        target = folder / SQLITE_FILE
        with sqlite3.connect(make_url(url).database or "") as live, sqlite3.connect(target) as copy:
            live.backup(copy)  # page by page, consistent even while others write
    else:
        target = folder / PG_FILE
        subprocess.run([tool("pg_dump"), "--format=custom", "--no-owner", f"--file={target}", _pg_url(url)],
                       check=True, capture_output=True, text=True)
    (folder / MANIFEST).write_text(json.dumps({"file": target.name, "schema_version": version,
                                               "taken_at": time.time()}, indent=2))
    return target


def restore(url: str, folder: Path) -> Path:
    """Replaces the database at `url` with the backup in `folder`. Stop Nurture's processes first."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        raise FileNotFoundError(f"{folder} holds no Nurture backup ({MANIFEST} is missing)")
    source = folder / json.loads(manifest.read_text())["file"]
    if url.startswith("sqlite"):
        if source.name != SQLITE_FILE:
            raise ValueError(f"{folder} holds a PostgreSQL backup; restore it into PostgreSQL")
        with sqlite3.connect(source) as copy, sqlite3.connect(make_url(url).database or "") as live:
            copy.backup(live)
    else:
        if source.name != PG_FILE:
            raise ValueError(f"{folder} holds a SQLite backup; restore it into SQLite")
        subprocess.run([tool("pg_restore"), "--clean", "--if-exists", "--no-owner", f"--dbname={_pg_url(url)}",
                        str(source)], check=True, capture_output=True, text=True)
    return source
