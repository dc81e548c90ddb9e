"""A stand-in for HubSpot's CRM v3 API, following its documented request and response shapes:
objects are {id, properties, createdAt, updatedAt, archived}; errors are {status, message, correlationId,
category}; tasks and notes need `hs_timestamp`; associations use HubSpot-defined type ids."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

LIFECYCLE_STAGES = {"subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
                    "evangelist", "other"}
ASSOCIATIONS = {"tasks": 204, "notes": 202}


def _error(status: int, message: str, category: str) -> JSONResponse:
    return JSONResponse({"status": "error", "message": message, "correlationId": str(uuid.uuid4()),
                         "category": category}, status_code=status)


class FakeHubSpot:
    def __init__(self, token: str) -> None:
        self.token = token
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"contacts": {}, "tasks": {}, "notes": {}}
        self.associations: list[tuple[str, str, str, int]] = []
        self.ids = itertools.count(1001)
        self.throttle = 0  # answer this many next requests with 429
        self.app = self._build()

    def _object(self, kind: str, properties: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        oid = str(next(self.ids))
        obj = {"id": oid, "properties": {**properties, "hs_object_id": oid, "createdate": now},
               "createdAt": now, "updatedAt": now, "archived": False}
        self.objects[kind][oid] = obj
        return obj

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def auth(request: Request, call_next: Any) -> Any:
            if self.throttle:
                self.throttle -= 1
                return JSONResponse({"status": "error", "message": "You have reached your secondly limit.",
                                     "category": "RATE_LIMITS"}, status_code=429, headers={"Retry-After": "1"})
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return _error(401, "Authentication credentials not found.", "INVALID_AUTHENTICATION")
            return await call_next(request)

        @app.get("/crm/v3/objects/contacts")
        def list_contacts(limit: int = 10) -> dict[str, Any]:
            return {"results": list(self.objects["contacts"].values())[:limit]}

        @app.post("/crm/v3/objects/contacts/search")
        async def search(request: Request) -> Any:
            body = await request.json()
            filters = [f for group in body.get("filterGroups", []) for f in group.get("filters", [])]
            if not filters:
                return _error(400, "filterGroups must contain at least one filter", "VALIDATION_ERROR")
            hits = [o for o in self.objects["contacts"].values()
                    if all(f["operator"] == "EQ" and o["properties"].get(f["propertyName"]) == f["value"]
                           for f in filters)]
            return {"total": len(hits), "results": hits[: body.get("limit", 10)]}

        @app.post("/crm/v3/objects/{kind}", status_code=201)
        async def create(kind: str, request: Request) -> Any:
            if kind not in self.objects:
                return _error(404, f"Unknown object type {kind}", "OBJECT_NOT_FOUND")
            body = await request.json()
            properties = body.get("properties")
            if not isinstance(properties, dict):
                return _error(400, "Invalid input JSON: properties is required", "VALIDATION_ERROR")
            if kind in ("tasks", "notes") and "hs_timestamp" not in properties:
                return _error(400, "Property values were not valid: hs_timestamp is required", "VALIDATION_ERROR")
            if kind == "contacts" and any(o["properties"].get("email") == properties.get("email")
                                          for o in self.objects["contacts"].values()):
                return _error(409, "Contact already exists", "CONFLICT")
            for association in body.get("associations", []):
                type_id = association["types"][0]["associationTypeId"]
                if type_id != ASSOCIATIONS.get(kind) or association["to"]["id"] not in self.objects["contacts"]:
                    return _error(400, f"invalid association {association}", "VALIDATION_ERROR")
            obj = self._object(kind, properties)
            for association in body.get("associations", []):
                self.associations.append((kind, obj["id"], association["to"]["id"],
                                          association["types"][0]["associationTypeId"]))
            return obj

        @app.patch("/crm/v3/objects/contacts/{oid}")
        async def update(oid: str, request: Request) -> Any:
            obj = self.objects["contacts"].get(oid)
            if obj is None:
                return _error(404, f"Object not found. objectId are usually numeric. {oid}", "OBJECT_NOT_FOUND")
            properties = (await request.json()).get("properties", {})
            stage = properties.get("lifecyclestage")
            if stage is not None and stage not in LIFECYCLE_STAGES:
                return _error(400, f"{stage} was not one of the allowed options", "VALIDATION_ERROR")
            obj["properties"].update(properties)
            return obj

        return app

    def contact(self, email: str) -> dict[str, Any] | None:
        return next((o for o in self.objects["contacts"].values() if o["properties"].get("email") == email), None)
