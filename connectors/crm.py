"""The built-in CRM: Nurture's own tables (the lead, its stage history, tasks and notes)."""

from __future__ import annotations

import time

from connectors.base import BaseConnector, ConnectorError, Message, Receipt
from store.sales import LifecycleError, SalesStore
from store.tables import CrmNote, CrmTask


class BuiltinCrmConnector(BaseConnector):
    name = "builtin-crm"
    channel = "crm"

    def send(self, message: Message) -> Receipt:
        if self.context.store is None:
            raise ConnectorError("the built-in CRM needs Nurture's store")
        sales = SalesStore(self.context.store)
        p, now = message.payload, time.time()
        try:
            match message.action:
                case "update_field":
                    sales.set_attribute(message.lead_id, p["field"], p.get("value"))
                    return Receipt("sent", message.lead_id, f"{p['field']} = {p.get('value')!r}")
                case "set_stage":
                    moved = sales.set_stage(message.lead_id, p["stage"], p.get("reason", "care model step"), now)
                    return Receipt("sent", message.lead_id, f"stage {p['stage']}" if moved else "stage unchanged")
                case "create_task":
                    sales.add_task(CrmTask(key=message.key, lead_id=message.lead_id, owner=str(p.get("owner", "")),
                                           text=p["text"], at=now))
                    return Receipt("sent", message.key, "task created")
                case "add_note":
                    sales.add_note(CrmNote(key=message.key, lead_id=message.lead_id, text=p["text"], at=now))
                    return Receipt("sent", message.key, "note added")
        except LifecycleError as exc:
            return Receipt("skipped", detail=str(exc))
        raise ConnectorError(f"built-in CRM cannot '{message.action}'")
