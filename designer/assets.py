"""Where the web app finds its page templates, its front-end assets (htmx, Swagger UI) and the example care
models: inside the installed package (a wheel or an image), or, running from a source checkout, beside the packages.
Swagger UI comes the way htmx does, so the API docs work offline."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

PACKAGE = Path(str(files("designer")))
CHECKOUT = PACKAGE.parent


def _first(*candidates: Path) -> Path:
    return next((c for c in candidates if c.exists()), candidates[-1])


TEMPLATES_DIR = _first(PACKAGE / "templates", CHECKOUT / "templates")
STATIC_DIR = _first(PACKAGE / "static", CHECKOUT / "node_modules" / "htmx.org" / "dist")
SWAGGER_DIR = _first(PACKAGE / "static" / "swagger", CHECKOUT / "node_modules" / "swagger-ui-dist")
EXAMPLES_DIR = _first(PACKAGE / "examples", CHECKOUT / "examples")


class AssetsMissing(RuntimeError):
    """The web app would serve pages that cannot work: say so instead of starting."""


def check() -> None:
    """Raises AssetsMissing naming each missing piece and how to get it."""
    missing = [f"{path} ({why})" for path, why in (
        (TEMPLATES_DIR / "base.html", "the page templates"),
        (SWAGGER_DIR / "swagger-ui-bundle.js", "Swagger UI for the API docs, from the npm registry: run `npm ci`"),
        (STATIC_DIR / "htmx.min.js", "htmx, from the npm registry: run `npm ci` in the checkout, or install a "
                                     "wheel or image built with it"),
    ) if not path.exists()]
    if missing:
        raise AssetsMissing("the web app's files are missing: " + "; ".join(missing))
