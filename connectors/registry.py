"""Connectors are found through the `nurture.connectors` entry point group, ours like anyone's, and
configured per channel in a YAML file (`connectors.yaml` by default)."""

from __future__ import annotations

import os
import re
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from connectors.base import BaseConnector, Connector, ConnectorContext, ConnectorError
from connectors.dryrun import DryRunConnector
from connectors.ratelimit import RateLimitedConnector
from nurture.settings import Settings
from store.store import Store

GROUP = "nurture.connectors"
CHANNELS = ("email", "social", "crm", "webhook")


def available() -> dict[str, type[BaseConnector]]:
    return {ep.name: ep.load() for ep in entry_points(group=GROUP)}


def read_config(path: Path) -> dict[str, dict[str, Any]]:
    """channel -> {"connector": name, ...settings}; an absent file configures nothing."""
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConnectorError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConnectorError(f"{path}: expected channels mapping to settings, e.g. email: {{connector: smtp, ...}}")
    unknown = sorted(set(data) - set(CHANNELS))
    if unknown:
        raise ConnectorError(f"{path}: unknown channel(s) {unknown}; channels are {list(CHANNELS)}")
    return {channel: {k: _from_env(v, f"{path}: {channel}.{k}") for k, v in cfg.items()}
            for channel, cfg in data.items()}


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _from_env(value: Any, where: str) -> Any:
    """`${NAME}` in a string becomes the environment variable's value, so secrets stay out of the file."""
    if not isinstance(value, str):
        return value

    def look_up(match: re.Match[str]) -> str:
        if match.group(1) not in os.environ:
            raise ConnectorError(f"{where}: the environment variable {match.group(1)} is not set")
        return os.environ[match.group(1)]

    return _REFERENCE.sub(look_up, value)


def build(config: dict[str, dict[str, Any]], context: ConnectorContext, dry_run: bool = False,
          source: str = "connectors.yaml") -> dict[str, Connector]:
    """One connector per channel; a channel left unconfigured (or everything, in dry-run) goes to dry-run."""
    found = available()
    out: dict[str, Connector] = {}
    for channel in CHANNELS:
        settings = dict(config.get(channel) or {})
        name = settings.pop("connector", None)
        if dry_run or name is None:
            out[channel] = DryRunConnector(DryRunConnector.Config(), context)
            continue
        if name not in found:
            raise ConnectorError(f"{source}: {channel}: no connector named '{name}'; installed: {sorted(found)}")
        cls = found[name]
        if cls.channel not in (channel, "any"):
            raise ConnectorError(f"{source}: {channel}: connector '{name}' is for the {cls.channel} channel")
        try:
            settings_model = cls.Config.model_validate(settings)
        except ValidationError as exc:
            problems = "; ".join(f"field '{'.'.join(map(str, e['loc']))}': {e['msg']}" for e in exc.errors())
            raise ConnectorError(f"{source}: {channel} ({name}): {problems}") from None
        connector: Connector = cls(settings_model, context)
        if settings_model.rate_per_minute:
            connector = RateLimitedConnector(connector, settings_model.rate_per_minute)  # type: ignore[assignment]
        out[channel] = connector
    return out


def from_settings(settings: Settings, store: Store) -> dict[str, Connector]:
    """The connectors an operator configured (`NURTURE_CONNECTORS_FILE`), one per channel."""
    context = ConnectorContext(public_url=settings.public_base, store=store,
                               outbound_allow=tuple(settings.outbound_allowed))
    return build(read_config(settings.connectors_file), context, dry_run=settings.dry_run,
                 source=str(settings.connectors_file))
