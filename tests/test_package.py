"""Nurture installed as a package, away from the repository: the wheel carries the whole UI, `nurture up` runs
from it, and the designer works in real Chromium. The image's build stages make the same wheel."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.test_designer_browser import ARTIFACTS, CHROMIUM_ARGS, add_step, save, shot
from tests.test_up import Nurture

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(out: Path) -> Path:
    """The sdist, then the wheel built from it (as pip and PyPI do): no stale build/ of the checkout gets in."""
    subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], check=True, capture_output=True)
    [wheel] = out.glob("nurture-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtual environment outside the repository with only the wheel (and its dependencies) in it."""
    place = tmp_path_factory.mktemp("installed")
    wheel = build_wheel(place / "dist")
    venv = place / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheel)],
                   check=True, capture_output=True)
    yield venv


def test_the_wheel_carries_templates_htmx_and_examples(tmp_path: Path) -> None:
    names = zipfile.ZipFile(build_wheel(tmp_path)).namelist()
    assert "designer/static/htmx.min.js" in names
    assert "designer/static/swagger/swagger-ui-bundle.js" in names, "the API docs work offline"
    assert "designer/templates/designer/editor.html" in names
    assert "designer/templates/assets/nurture.js" in names, "our own script: the pages allow no inline one"
    assert "designer/examples/executive-nurture.yaml" in names
    assert not [n for n in names if n.startswith(("tests/", "node_modules/"))]


def test_nurture_up_from_the_wheel_serves_a_designer_that_works(installed: Path, tmp_path: Path) -> None:
    nurture = Nurture(tmp_path / "data")
    nurture.command, nurture.cwd = [str(installed / "bin" / "nurture"), "up"], tmp_path
    nurture.env.pop("PYTHONPATH", None)
    proc = nurture.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800}, base_url=nurture.url)
            # The first run: the link `nurture up` printed creates the first admin, who lands in the designer.
            page.goto(nurture.first_run_link())
            page.fill("#email", "owner@acme.test")
            page.fill("#password", "a long enough password")
            page.click("text=Create the admin")
            expect(page.locator("nav.top .me")).to_contain_text("owner@acme.test · admin")
            page.goto("/designer")
            page.fill('input[name="name"]', "From the wheel")
            page.click("text=Create")
            add_step(page, "__start__:start", "email")  # an htmx request that swaps the side panel
            save(page, subject="Hello from an installed Nurture", body="<p>Hi</p>")
            expect(page.locator("#node-email-1")).to_contain_text("Hello from an installed")
            page.click("text=Publish…")
            page.locator("form button.primary", has_text="Publish").click()
            expect(page.locator("#published")).to_contain_text("Published version 1")
            expect(page.locator("section.card")).to_contain_text("The first version: 2 steps.")
            ARTIFACTS.mkdir(exist_ok=True)
            shot(page, "wheel-published")
            # The API docs come from the wheel too: this browser reaches nothing but the app.
            page.goto("/docs")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("Nurture 0.1.0")
            expect(page.locator(".opblock-summary-path", has_text="/api/leads/{lead_id}").first).to_be_visible()
            browser.close()
    finally:
        nurture.stop(proc)


def test_nurture_web_refuses_to_start_without_htmx(installed: Path, tmp_path: Path) -> None:
    [htmx] = (installed / "lib").glob("python3*/site-packages/designer/static/htmx.min.js")
    hidden = htmx.with_suffix(".hidden")
    htmx.rename(hidden)
    try:
        run = subprocess.run([str(installed / "bin" / "nurture"), "web"], cwd=tmp_path, capture_output=True,
                             text=True, timeout=60, env={**os.environ, "NURTURE_DATA_DIR": str(tmp_path)})
    finally:
        hidden.rename(htmx)
    assert run.returncode == 1
    assert "error: the web app's files are missing" in run.stderr and "htmx.min.js" in run.stderr


def test_the_images_build_stages_produce_the_htmx_asset_in_the_wheel(tmp_path: Path) -> None:
    """Runs the Dockerfile's own steps without Docker: its Node stage's install, then its wheel build."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = {m.group(1): m.start() for m in re.finditer(r"^FROM \S+ AS (\w+)$", dockerfile, re.M)}
    assert {"assets", "wheel"} <= set(stages), "the Dockerfile builds in stages named assets and wheel"
    run_lines = re.findall(r"^RUN (.+)$", dockerfile, re.M)
    [npm] = [line for line in run_lines if line.startswith("npm ")]
    [wheel] = [line for line in run_lines if "pip wheel" in line or "-m build" in line]

    node = tmp_path / "assets"
    node.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(ROOT / name, node / name)
    subprocess.run(shlex.split(npm), cwd=node, check=True, capture_output=True)
    assert (node / "node_modules" / "htmx.org" / "dist" / "htmx.min.js").exists()

    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", "node_modules", ".git", "data", "tests",
                                                                  "build", "dist", "*.egg-info", "__pycache__"))
    copies = re.findall(r"^COPY --from=assets /src/(\S+) \./(\S+)$", dockerfile, re.M)
    assert copies, "the wheel stage takes the front-end files from the assets stage"
    for taken, put in copies:  # as the Dockerfile's COPY --from=assets lines do
        (source / put).parent.mkdir(parents=True, exist_ok=True)
        if (node / taken).is_dir():
            shutil.copytree(node / taken, source / put)
        else:
            shutil.copy2(node / taken, source / put)
    command = shlex.split(wheel.replace("python ", f"{sys.executable} ", 1))
    subprocess.run(command, cwd=source, check=True, capture_output=True)
    [built] = (source / "wheels").glob("nurture-*.whl")
    assert "designer/static/htmx.min.js" in zipfile.ZipFile(built).namelist()
    assert "designer/static/swagger/swagger-ui-bundle.js" in zipfile.ZipFile(built).namelist()
