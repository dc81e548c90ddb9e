"""Forms that identify website visitors: what a form asks, and what a submission says once checked. Pure."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Fields a marketer ticks on: each becomes a lead attribute of the same name (email is the lead's address).
STANDARD = {"email": "Work email", "first_name": "First name", "last_name": "Last name", "company": "Company",
            "job_title": "Job title", "phone": "Phone", "country": "Country"}
HONEYPOT = "website"  # hidden from people; a bot that fills every field fills this one too
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class FormField(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="the lead attribute it fills; 'email' is the lead's address")
    label: str = ""
    type: Literal["text", "email", "tel"] = "text"
    required: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or value in (HONEYPOT, "consent", "nurture_visitor"):
            raise ValueError(f"'{value}' cannot name a field: use lower-case letters, digits and _ "
                             f"(and not '{HONEYPOT}', 'consent' or 'nurture_visitor', which forms use themselves)")
        return value


class FormDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    site: str = Field(min_length=1)
    name: str = Field(min_length=1, max_length=200)
    fields: list[FormField] = Field(min_length=1)
    consent_text: str = Field(default="", max_length=2000,
                              description="what the visitor agrees to; when set, a box they must tick")
    double_opt_in: bool = Field(default=False, description="confirm the address by an emailed link first")
    thanks: str = Field(default="Thank you.", max_length=2000)
    redirect: str = Field(default="", pattern=r"^$|^https?://", description="where to send the visitor after")

    @model_validator(mode="after")
    def _has_email(self) -> FormDefinition:
        names = [f.name for f in self.fields]
        if "email" not in names:
            raise ValueError("a form identifies its visitor by email: add the 'email' field")
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"fields must have different names: {', '.join(twice)} appears twice")
        for f in self.fields:
            if f.name == "email":
                f.type, f.required = "email", True
            f.label = f.label or STANDARD.get(f.name, f.name.replace("_", " ").capitalize())
        return self


class Submission(BaseModel):
    email: str
    attributes: dict[str, str]
    consented: bool


def read_submission(form: FormDefinition, values: dict[str, Any]) -> tuple[Submission | None, dict[str, str]]:
    """The submission, or the problems with it by field name, in words for the visitor."""
    problems: dict[str, str] = {}
    attributes: dict[str, str] = {}
    email = ""
    for f in form.fields:
        value = str(values.get(f.name) or "").strip()[:500]
        if not value:
            if f.required:
                problems[f.name] = f"{f.label} is required"
            continue
        if f.name == "email":
            if not _EMAIL.match(value):
                problems[f.name] = f"'{value}' is not an email address"
            email = value.lower()
        else:
            attributes[f.name] = value
    consented = str(values.get("consent") or "").lower() in ("on", "yes", "true", "1")
    if form.consent_text and not consented:
        problems["consent"] = "tick the box to agree, or we cannot keep your details"
    if problems:
        return None, problems
    return Submission(email=email, attributes=attributes, consented=consented), {}
