"""A throwaway PostgreSQL server from the machine's own binaries, for the tests that run on PostgreSQL."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg


def _bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: run `scripts/setup --test` (Debian package postgresql)")
    return found


class PostgresServer:
    def __init__(self) -> None:
        # Not under pytest's tmp: that is private to root, and the server runs as the postgres user.
        self.base = Path(tempfile.mkdtemp(prefix="nurture-pg-"))
        self.data = self.base / "data"
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]

    def _run(self, *args: str) -> None:
        # PostgreSQL refuses to run as root; on CI (root) it runs as the postgres user Debian creates.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *args], check=True, capture_output=True)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
        self._run(_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"), "-w", "start", "-o",
                  f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off")

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def new_database(self) -> str:
        name = f"nurture_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"
