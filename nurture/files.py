"""Reading the user's files: care models, sample leads and event timelines, with located errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.document import CareModelDocument
from engine.lead import LeadIn
from engine.validator import DocumentError, Problem, load


class InputError(ValueError):
    """Bad user input: the message says what and where; the CLI prints it without a traceback."""


def read_text(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (IsADirectoryError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


def load_document(path: str | Path) -> tuple[CareModelDocument | None, list[Problem]]:
    return load(read_text(path))


def read_document(path: str | Path) -> CareModelDocument:
    doc, problems = load_document(path)
    if doc is None or problems:
        raise DocumentError(problems)
    return doc


def _data(path: str | Path) -> Any:
    try:
        return yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{path}{line}: not valid YAML or JSON: {getattr(exc, 'problem', exc)}") from None


def read_lead(path: str | Path) -> LeadIn:
    try:
        return LeadIn.model_validate(_data(path))
    except ValidationError as exc:
        raise InputError(f"{path}: " + "; ".join(
            f"field '{'.'.join(str(p) for p in e['loc']) or '(root)'}': {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors())) from None


def read_events(path: str | Path) -> list[dict[str, Any]]:
    data = _data(path)
    if isinstance(data, dict) and "events" in data:
        data = data["events"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of events, e.g. [{{after: 2d, type: email.clicked}}]")
    return data


class RepIn(BaseModel):
    """A sales rep as a simulation's reps file lists them."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    name: str = ""
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    team: str = Field(min_length=1)
    territories: list[str] = []
    manager: bool = False


def read_reps(path: str | Path) -> list[RepIn]:
    data = _data(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of reps, e.g. [{{id: ana, email: ana@acme.test, team: sales}}]")
    reps = []
    for n, item in enumerate(data, start=1):
        try:
            reps.append(RepIn.model_validate(item))
        except ValidationError as exc:
            raise InputError(f"{path}: rep #{n}: " + "; ".join(
                f"field '{'.'.join(str(p) for p in e['loc'])}': {e['msg']}" for e in exc.errors())) from None
    return reps
