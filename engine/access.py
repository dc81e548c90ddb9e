"""Who may do what: the permissions a route asks for, which double as API token scopes, and each role's share."""

from __future__ import annotations

# One vocabulary for people and integrations: a role grants permissions, a token carries some as scopes.
PERMISSIONS: dict[str, str] = {
    "care-models:read": "see care models, drafts, versions and the API description",
    "care-models:write": "edit drafts and simulate",
    "care-models:publish": "publish, revert and move running leads to a new version",
    "leads:read": "see every lead, its profile and journey",
    "leads:write": "create and change leads, enrol them",
    "events:write": "send events about leads",
    "reports:read": "see results",
    "website": "add tracked websites, their forms and segments of leads",
    "handovers:own": "answer the handovers routed to oneself",
    "handovers:team": "see the team's handovers and reassign them",
    "sales:write": "change reps and the scoring model",
    "privacy": "export and erase a lead's data",
    "audit:read": "read the audit log",
    "admin": "manage users, API tokens, connectors and settings",
}

_VIEWER = {"care-models:read", "leads:read", "reports:read"}
_MARKETER = _VIEWER | {"care-models:write", "website"}
_PUBLISHER = _MARKETER | {"care-models:publish", "leads:write"}

ROLES: dict[str, frozenset[str]] = {
    "admin": frozenset(PERMISSIONS),
    "publisher": frozenset(_PUBLISHER),
    "marketer": frozenset(_MARKETER),
    "viewer": frozenset(_VIEWER),
    "sales-manager": frozenset({"handovers:own", "handovers:team"}),
    "sales-rep": frozenset({"handovers:own"}),
}

ROLE_NOTES: dict[str, str] = {
    "admin": "users, tokens, connectors, settings, privacy requests, the audit log, and everything below",
    "publisher": "publish, revert and migrate leads, and what a marketer may",
    "marketer": "edit drafts and simulate, and what a viewer may",
    "viewer": "read only: care models, leads, results",
    "sales-manager": "the team's inbox, reassign handovers, the journeys of the team's leads",
    "sales-rep": "their own inbox and the journeys of leads handed to them",
}

# The scopes an integration token may carry: everything but running the installation.
SCOPES = tuple(p for p in PERMISSIONS if p != "admin")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown role '{role}'; roles are {', '.join(ROLES)}")
    return role


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; scopes are {', '.join(SCOPES)}" if unknown
                         else f"a token needs at least one scope: {', '.join(SCOPES)}")
    return sorted(set(scopes))
