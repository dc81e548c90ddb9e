"""Social actions in LinkedIn's REST shapes: invitations, messages, likes and follows by member URN."""

from __future__ import annotations

import httpx
from pydantic import Field, SecretStr

from connectors.base import BaseConnector, ConnectorConfig, Message, Receipt
from connectors.http import bearer_client, call
from connectors.outbound import Guard


class LinkedInConfig(ConnectorConfig):
    access_token: SecretStr
    base_url: str = "https://api.linkedin.com"
    actor: str = Field(pattern=r"^urn:li:(person|organization):\S+$", description="who acts, e.g. urn:li:person:abc")
    version: str = "202501"
    timeout: float = 15


class LinkedInConnector(BaseConnector):
    name = "linkedin"
    channel = "social"
    Config = LinkedInConfig
    config: LinkedInConfig

    def _client(self) -> httpx.Client:
        return bearer_client(self.config.base_url, self.config.access_token, self.config.timeout,
                             Guard(self.context.outbound_allow),
                             **{"X-Restli-Protocol-Version": "2.0.0", "LinkedIn-Version": self.config.version})

    def verify(self) -> None:
        with self._client() as client:
            call(client, "GET", "/v2/userinfo", "LinkedIn")

    def send(self, message: Message) -> Receipt:
        member = message.to
        if not member.startswith("urn:li:person:"):
            return Receipt("skipped", detail="lead has no LinkedIn member URN (attribute 'linkedin')")
        actor = self.config.actor
        with self._client() as client:
            match message.action:
                case "connect":
                    body = {"invitee": member, "inviter": actor, "message": message.body[:300]}
                    result = call(client, "POST", "/v2/invitations", "LinkedIn", json=body)
                case "message":
                    result = call(client, "POST", "/v2/messages", "LinkedIn", json={
                        "sender": actor, "recipients": [member], "body": message.body})
                case "like_post":
                    post = message.payload.get("post")
                    if not post:
                        return Receipt("skipped", detail="lead has no recent post to like (attribute 'linkedin_post')")
                    result = call(client, "POST", f"/v2/socialActions/{post}/likes", "LinkedIn",
                                  json={"actor": actor, "object": post})
                case _:
                    result = call(client, "POST", "/v2/follows", "LinkedIn", json={"follower": actor,
                                                                                     "followee": member})
        return Receipt("sent", str(result.get("id", "")), f"LinkedIn {message.action}")
