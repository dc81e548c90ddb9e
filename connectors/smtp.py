"""Email over SMTP: multipart HTML and text, List-Unsubscribe, a Message-ID derived from the idempotency key,
and bounce reports (DSN) read back as lead events."""

from __future__ import annotations

import email
import email.message
import email.policy
import email.utils
import hashlib
import hmac
import re
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage

from pydantic import Field, SecretStr

from connectors.base import (
    BaseConnector,
    ConnectorConfig,
    ConnectorError,
    InboundEvent,
    InboundRejected,
    MaybeDelivered,
    Message,
    Receipt,
    Undeliverable,
)


class SmtpConfig(ConnectorConfig):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    tls: bool = False
    from_address: str = Field(min_length=3, description="e.g. 'Acme <hello@acme.test>'")
    reply_to: str | None = None
    message_id_domain: str = "nurture.local"
    inbound_secret: SecretStr | None = Field(default=None, description="shared with the MTA that posts bounces")
    timeout: float = 15


# RFC 5322 lines may be 998 characters: List-Unsubscribe's URL stays on one line, verbatim, as RFC 2369 asks
# (folding it made Python encode it as RFC 2047, which receivers do not read as a <URL>).
WIRE = email.policy.SMTP.clone(max_line_length=998)
_ADDRESS = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")


def recipient(message: Message) -> str:
    """The one address a message goes to; a list or a malformed address is refused, never sent to all of it."""
    found = email.utils.getaddresses([message.to])
    if len(found) != 1 or not _ADDRESS.match(found[0][1]) or "," in message.to or ";" in message.to:
        raise Undeliverable(f"lead {message.lead_id} has no single valid email address ({message.to!r})")
    return found[0][1]


def _said(code: int, reply: bytes) -> str:
    return f"{code} {reply.decode(errors='replace')}"


def message_id(key: str, domain: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


class SmtpConnector(BaseConnector):
    name = "smtp"
    channel = "email"
    Config = SmtpConfig
    config: SmtpConfig

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        try:
            if c.tls:
                server: smtplib.SMTP = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout,
                                                        context=ssl.create_default_context())
            else:
                server = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
            if c.starttls:
                server.starttls(context=ssl.create_default_context())
            if c.username and c.password:
                server.login(c.username, c.password.get_secret_value())
        except (OSError, smtplib.SMTPException) as exc:
            detail = getattr(exc, "strerror", None) or getattr(exc, "smtp_code", "") or ""
            raise ConnectorError(f"SMTP {c.host}:{c.port}: {type(exc).__name__} {detail}".rstrip()) from None
        return server

    def verify(self) -> None:
        with self._connect() as server:
            code, _ = server.noop()
            if code != 250:
                raise ConnectorError(f"SMTP {self.config.host}:{self.config.port} answered NOOP with {code}")

    def build(self, message: Message) -> EmailMessage:
        c = self.config
        mail = EmailMessage(policy=WIRE)
        mail["From"] = c.from_address
        mail["To"] = recipient(message)
        mail["Subject"] = message.subject
        mail["Date"] = email.utils.formatdate(usegmt=True)
        mail["Message-ID"] = message_id(message.key, c.message_id_domain)
        mail["X-Nurture-Lead"] = message.lead_id
        if c.reply_to:
            mail["Reply-To"] = c.reply_to
        for name, value in message.headers.items():
            mail[name] = value
        mail.set_content(message.text or message.body)
        mail.add_alternative(message.body, subtype="html")
        return mail

    def send(self, message: Message) -> Receipt:
        """Up to RCPT a failure means nothing was delivered; from DATA on, the server may have taken the message
        before the failure (a reply that never came), so it is reported as MaybeDelivered, never resent blindly."""
        mail = self.build(message)
        to, sender = str(mail["To"]), email.utils.parseaddr(self.config.from_address)[1]
        with self._connect() as server:
            try:
                server.ehlo_or_helo_if_needed()
                code, reply = server.mail(sender)
                if code != 250:
                    raise ConnectorError(f"SMTP refused the sender: {_said(code, reply)}")
                code, reply = server.rcpt(to)
            except (OSError, smtplib.SMTPException) as exc:
                raise ConnectorError(f"SMTP send failed before the message: {type(exc).__name__}") from None
            if code >= 500:
                return Receipt("bounced", mail["Message-ID"], f"recipient refused: {_said(code, reply)}")
            if code not in (250, 251):
                raise ConnectorError(f"SMTP deferred the recipient: {_said(code, reply)}")
            try:
                code, reply = server.data(mail.as_bytes())
            except smtplib.SMTPDataError as exc:  # DATA itself was refused: no content was sent
                raise ConnectorError(f"SMTP refused DATA: {exc.smtp_code}") from None
            except (OSError, smtplib.SMTPException) as exc:
                raise MaybeDelivered(f"SMTP {type(exc).__name__} after the message was sent; it may have "
                                     f"been delivered") from None
        if code >= 500:
            raise Undeliverable(f"SMTP rejected the message: {_said(code, reply)}")
        if code != 250:
            raise ConnectorError(f"SMTP deferred the message: {_said(code, reply)}")
        return Receipt("sent", mail["Message-ID"])

    def verify_inbound(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        """A delivery status notification (RFC 3464) posted by the MTA, authenticated by a shared token."""
        secret = self.config.inbound_secret
        given = {k.lower(): v for k, v in headers.items()}.get("x-nurture-inbound-token", "")
        if secret is None or not hmac.compare_digest(given, secret.get_secret_value()):
            raise InboundRejected("bounce report rejected: missing or wrong X-Nurture-Inbound-Token")
        report = email.message_from_bytes(body, policy=email.policy.default)
        lead_id, original_id, action, status = "", "", "", ""
        for part in report.walk():
            ctype = part.get_content_type()
            if ctype == "message/delivery-status":
                for block in part.get_payload():
                    if isinstance(block, email.message.Message):
                        action = block.get("Action", action) or action
                        status = block.get("Status", status) or status
            elif ctype in ("text/rfc822-headers", "message/rfc822"):
                payload = part.get_payload()
                inner = payload[0] if isinstance(payload, list) else email.message_from_string(
                    str(payload), policy=email.policy.default)
                if not isinstance(inner, email.message.Message):
                    continue
                lead_id = inner.get("X-Nurture-Lead", lead_id)
                original_id = inner.get("Message-ID", original_id)
        if not lead_id or not action:
            raise InboundRejected("not a bounce report for a Nurture email (no delivery status or X-Nurture-Lead)")
        hard = action.strip().lower() == "failed" and status.strip().startswith("5")
        return [InboundEvent(id=f"bounce:{original_id}:{action.strip()}", lead_id=str(lead_id), type="email.bounced",
                             data={"hard": hard, "status": status.strip(), "message_id": str(original_id)})]
