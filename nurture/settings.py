"""Operator settings, read from NURTURE_* environment variables (or a .env file)."""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NURTURE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    task_queue: str = "nurture"
    dry_run: bool = False
    connectors_file: Path = Path("connectors.yaml")
    public_url: str | None = None
    secret_key: SecretStr | None = None
    # Event types integrators send, beyond the built-in ones and those already seen: "trial.started,webinar.attended"
    event_types: str = ""
    # One box: every process brings the schema up to date. Many processes: run `nurture migrate` once instead.
    auto_migrate: bool = True
    # A marketer asks, a publisher approves that exact draft (someone other than who asked), then it is live.
    publish_approval: bool = False
    # Private or loopback addresses webhooks and connectors may still call: "10.1.2.0/24,crm.internal"
    outbound_allow: str = ""
    # Single sign-on with OpenID Connect: set the issuer (its /.well-known/openid-configuration) and the client.
    oidc_issuer: str | None = None
    oidc_client_id: str = ""
    oidc_client_secret: SecretStr | None = None
    oidc_label: str = "single sign-on"
    # The role a person gets on a first sign-in through SSO; empty: only people added as users may sign in.
    oidc_default_role: str = ""

    # Public endpoints, per client address and minute: tracker page views, and form submissions (against spam).
    tracker_per_minute: int = 240
    forms_per_minute: int = 10
    # Enrolling a segment in bulk: leads handed to Temporal per second, so running care models keep their pace.
    bulk_per_second: float = 50.0

    @cached_property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'nurture.db'}"

    @property
    def public_base(self) -> str:
        """Where people reach the web app: tracked links, unsubscribe and inbox links point here."""
        return (self.public_url or f"http://{self.web_host}:{self.web_port}").rstrip("/")

    def secret(self) -> bytes:
        """Signs tracking and unsubscribe links; made once per data directory unless given."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()

    @property
    def outbound_allowed(self) -> list[str]:
        return [entry.strip() for entry in self.outbound_allow.split(",") if entry.strip()]

    @property
    def https(self) -> bool:
        return self.public_base.startswith("https://")

    @property
    def declared_events(self) -> set[str]:
        return {name.strip() for name in self.event_types.split(",") if name.strip()}

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"
