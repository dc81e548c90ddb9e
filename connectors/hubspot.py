"""A CRM connector speaking HubSpot's CRM v3 REST API (contacts, tasks, notes)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from pydantic import Field, SecretStr

from connectors.base import BaseConnector, ConnectorConfig, ConnectorError, Message, Receipt
from connectors.http import bearer_client, call
from connectors.outbound import Guard

# Nurture's lifecycle stages in HubSpot's `lifecyclestage` property values.
LIFECYCLE = {"suspect": "subscriber", "prospect": "lead", "mql": "marketingqualifiedlead",
             "sal": "salesqualifiedlead", "sql": "salesqualifiedlead", "opportunity": "opportunity",
             "customer": "customer"}
TASK_TO_CONTACT, NOTE_TO_CONTACT = 204, 202  # HubSpot-defined association type ids


class HubSpotConfig(ConnectorConfig):
    access_token: SecretStr = Field(description="private app access token")
    base_url: str = "https://api.hubapi.com"
    timeout: float = 15


class HubSpotConnector(BaseConnector):
    name = "hubspot"
    channel = "crm"
    Config = HubSpotConfig
    config: HubSpotConfig

    def _client(self) -> httpx.Client:
        return bearer_client(self.config.base_url, self.config.access_token, self.config.timeout,
                             Guard(self.context.outbound_allow))

    def verify(self) -> None:
        with self._client() as client:
            call(client, "GET", "/crm/v3/objects/contacts", "HubSpot", params={"limit": 1})

    def contact_id(self, client: httpx.Client, email: str) -> str:
        if not email:
            raise ConnectorError("HubSpot contacts are matched by email and this lead has none")
        found = call(client, "POST", "/crm/v3/objects/contacts/search", "HubSpot", json={
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
            "properties": ["email"], "limit": 1})
        if found.get("results"):
            return str(found["results"][0]["id"])
        return str(call(client, "POST", "/crm/v3/objects/contacts", "HubSpot",
                        json={"properties": {"email": email}})["id"])

    def send(self, message: Message) -> Receipt:
        p = message.payload
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with self._client() as client:
            contact = self.contact_id(client, p.get("email") or message.to)
            match message.action:
                case "update_field":
                    call(client, "PATCH", f"/crm/v3/objects/contacts/{contact}", "HubSpot",
                         json={"properties": {p["field"]: p.get("value")}})
                    return Receipt("sent", contact, f"contact {contact}: {p['field']} updated")
                case "set_stage":
                    call(client, "PATCH", f"/crm/v3/objects/contacts/{contact}", "HubSpot",
                         json={"properties": {"lifecyclestage": LIFECYCLE[p["stage"]]}})
                    return Receipt("sent", contact, f"contact {contact}: lifecycle {LIFECYCLE[p['stage']]}")
                case "create_task":
                    properties = {"hs_timestamp": p.get("due") or now, "hs_task_subject": p["text"][:250],
                                  "hs_task_body": p["text"], "hs_task_status": "NOT_STARTED",
                                  "hs_task_priority": "HIGH"}
                    if p.get("owner"):
                        properties["hubspot_owner_id"] = str(p["owner"])
                    task = call(client, "POST", "/crm/v3/objects/tasks", "HubSpot", json={
                        "properties": properties, "associations": [_to(contact, TASK_TO_CONTACT)]})
                    return Receipt("sent", str(task["id"]), f"task {task['id']} on contact {contact}")
                case "add_note":
                    note = call(client, "POST", "/crm/v3/objects/notes", "HubSpot", json={
                        "properties": {"hs_timestamp": now, "hs_note_body": p["text"]},
                        "associations": [_to(contact, NOTE_TO_CONTACT)]})
                    return Receipt("sent", str(note["id"]), f"note {note['id']} on contact {contact}")
        raise ConnectorError(f"HubSpot connector cannot '{message.action}'")


def _to(contact: str, type_id: int) -> dict:
    return {"to": {"id": contact}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}
