"""Connectors are found through the `nurture.connectors` entry point group, ours like anyone's."""

from __future__ import annotations

from importlib.metadata import entry_points

from connectors.base import Connector

GROUP = "nurture.connectors"


def available() -> dict[str, type]:
    return {ep.name: ep.load() for ep in entry_points(group=GROUP)}


def build(names: dict[str, str], dry_run: bool) -> dict[str, Connector]:
    """Channel -> connector instance; in dry-run every channel goes to the dry-run connector."""
    found = available()
    if dry_run:
        return {channel: found["dryrun"]() for channel in names}
    missing = {channel: name for channel, name in names.items() if name not in found}
    if missing:
        raise LookupError(f"connectors not installed: {missing}; installed: {sorted(found)}")
    return {channel: found[name]() for channel, name in names.items()}
