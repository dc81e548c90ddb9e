"""Puts the web app's files into the wheel, beside the `designer` package that serves them: the page templates,
the example care models, and htmx and Swagger UI from the npm registry (pinned by package-lock.json, never
committed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
HTMX = ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
SWAGGER = ROOT / "node_modules" / "swagger-ui-dist"
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if not HTMX.exists() and shutil.which("npm") and (ROOT / "package-lock.json").exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=ROOT, check=True)
        if not HTMX.exists():
            raise SystemExit(f"{HTMX} is missing: run `npm ci` (Node.js and npm) before building Nurture")
        target = Path(self.build_lib) / "designer"
        for source, name in ((ROOT / "templates", "templates"), (ROOT / "examples", "examples")):
            shutil.copytree(source, target / name, dirs_exist_ok=True)
        (target / "static").mkdir(parents=True, exist_ok=True)
        shutil.copy2(HTMX, target / "static" / "htmx.min.js")
        (target / "static" / "swagger").mkdir(exist_ok=True)
        for name in SWAGGER_FILES:
            shutil.copy2(SWAGGER / name, target / "static" / "swagger" / name)


setup(cmdclass={"build_py": BuildWithAssets})
