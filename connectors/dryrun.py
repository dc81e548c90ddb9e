"""Accepts every message and sends nothing: for simulation and for channels not yet connected."""

from __future__ import annotations

from connectors.base import BaseConnector, Message, Receipt


class DryRunConnector(BaseConnector):
    name = "dryrun"
    channel = "any"

    def send(self, message: Message) -> Receipt:
        return Receipt(status="dry_run", external_id=f"dry-run:{message.key}",
                       detail=f"would {message.action or 'send'} via {message.channel}")
