"""Leads read from a CSV file: columns mapped to lead fields or attributes, every row checked, rows that are the
same lead (by id, else by email) merged, and every bad row reported by its line, column and reason. Pure."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from engine.lead import LeadIn

LEAD_FIELDS = ("id", "email", "stage", "fit", "engagement", "timezone")
IGNORE = ""


@dataclass(frozen=True)
class RowProblem:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column '{self.column}': {self.reason}" if self.column else \
            f"line {self.line}: {self.reason}"


@dataclass
class LeadsFile:
    leads: list[LeadIn] = field(default_factory=list)
    lines: dict[str, list[int]] = field(default_factory=dict)  # lead id -> the lines it came from
    problems: list[RowProblem] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    rows: int = 0


def column_key(column: str) -> str:
    """A column's name as an attribute name: "Company size" is company_size."""
    return re.sub(r"[^a-z0-9]+", "_", column.strip().lower()).strip("_")


def guess_mapping(columns: list[str]) -> dict[str, str]:
    """Each column to a lead field when its name is one ("E-mail" is email), else to an attribute of its name."""
    out = {}
    for column in columns:
        key = column_key(column)
        key = {"e_mail": "email", "email_address": "email", "lead_id": "id", "time_zone": "timezone"}.get(key, key)
        out[column] = key if key in LEAD_FIELDS else f"attributes.{key}" if key else IGNORE
    return out


def read_leads(text: str, mapping: dict[str, str] | None = None,
               known_email: Callable[[str], str | None] = lambda _: None) -> LeadsFile:
    """The leads a CSV describes. `mapping` sends each column to a lead field, `attributes.NAME` or "" to skip it
    (guessed from the header when not given); `known_email` finds the id of a lead already stored by email, so a
    row without an id updates that lead instead of making a second one."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    out = LeadsFile(columns=list(reader.fieldnames or []))
    if not out.columns:
        out.problems.append(RowProblem(1, "", "the file is empty: the first line names the columns"))
        return out
    mapping = mapping or guess_mapping(out.columns)
    if "email" not in mapping.values() and "id" not in mapping.values():
        out.problems.append(RowProblem(1, "", "no column is the lead's id or email: map one of them"))
        return out
    merged: dict[str, dict[str, Any]] = {}
    by_email: dict[str, str] = {}
    sources: dict[str, dict[str, str]] = {}  # lead id -> lead field -> the column that gave it
    for row in reader:
        line = reader.line_num
        out.rows += 1
        data, columns = _row(row, mapping)
        email = str(data.get("email", "")).strip().lower()
        lead_id = str(data.get("id", "")).strip() or by_email.get(email) or (known_email(email) if email else None) \
            or email
        if not lead_id:
            out.problems.append(RowProblem(line, "", "no id and no email: nothing says who this lead is"))
            continue
        data["id"] = lead_id
        candidate = _merge(merged.get(lead_id, {}), data)
        try:
            LeadIn.model_validate(candidate)
        except ValidationError as exc:
            for error in exc.errors():
                name = str(error["loc"][0]) if error["loc"] else ""
                column = columns.get(name) or sources.get(lead_id, {}).get(name, name)
                out.problems.append(RowProblem(line, column, _reason(name, error, candidate)))
            continue
        merged[lead_id] = candidate
        sources.setdefault(lead_id, {}).update(columns)
        out.lines.setdefault(lead_id, []).append(line)
        if email:
            by_email[email] = lead_id
    out.leads = [LeadIn.model_validate(data) for data in merged.values()]
    return out


def _reason(name: str, error: Any, data: dict[str, Any]) -> str:
    if name == "email" and error["type"] == "string_pattern_mismatch":
        return f"'{data.get('email')}' is not one email address"
    return str(error["msg"]).removeprefix("Value error, ")


def _row(row: dict[str | None, Any], mapping: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """A row's non-empty cells as lead data, and which column gave each field."""
    data: dict[str, Any] = {}
    columns: dict[str, str] = {}
    for column, value in row.items():
        target = mapping.get(column or "", IGNORE)
        if column is None or not target or value is None or not str(value).strip():
            continue
        value = str(value).strip()
        if target.startswith("attributes."):
            data.setdefault("attributes", {})[target.removeprefix("attributes.")] = value
            columns["attributes"] = column
        else:
            data[target] = value
            columns[target] = column
    return data, columns


def _merge(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Two rows about one lead: the later row's cells win, attributes merge."""
    attributes = {**earlier.get("attributes", {}), **later.get("attributes", {})}
    return {**earlier, **later} | ({"attributes": attributes} if attributes else {})
