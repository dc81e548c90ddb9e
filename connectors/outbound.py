"""Outbound safety: connectors and webhook steps call only public addresses, unless an operator allows more.

A URL is refused when its host resolves to a loopback, private, link-local (cloud metadata lives there), shared,
multicast, reserved or unspecified address. Every request is checked after resolution, redirects included, so a
public name that points inward, or a public URL that redirects inward, is refused too."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpx

from connectors.base import Undeliverable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_REDIRECTS = 5


class OutboundRefused(Undeliverable):
    """The address is not one Nurture may call: retrying will not change that."""


def _kind(address: Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    for label, test in (("loopback", address.is_loopback), ("link-local (cloud metadata)", address.is_link_local),
                        ("private", address.is_private), ("multicast", address.is_multicast),
                        ("unspecified", address.is_unspecified), ("reserved", address.is_reserved),
                        ("shared (carrier-grade NAT)", address in ipaddress.ip_network("100.64.0.0/10"))):
        if test:
            return label
    return None


class Guard:
    """Checks hosts against the rules and an operator's allow-list of networks and host names."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self.networks: list[Network] = []
        self.hosts: set[str] = set()
        for entry in allowed:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower())

    def check(self, url: str) -> None:
        """Raises OutboundRefused naming the URL, the address and why."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise OutboundRefused(f"{url!r} is not an http(s) URL")
        if host in self.hosts:
            return
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80),
                                       type=socket.SOCK_STREAM)
        except OSError as exc:
            raise OutboundRefused(f"{url}: the host '{host}' does not resolve ({exc.strerror or exc})") from None
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            kind = _kind(address)
            if kind and not any(address in n for n in self.networks):
                raise OutboundRefused(
                    f"{url}: '{host}' resolves to {address}, a {kind} address; Nurture calls only public addresses "
                    f"unless an operator allows it (NURTURE_OUTBOUND_ALLOW)")

    def client(self, **kwargs: object) -> httpx.Client:
        """An httpx client that checks every request it sends, redirects included."""
        return httpx.Client(event_hooks={"request": [lambda request: self.check(str(request.url))]},
                            follow_redirects=True, max_redirects=MAX_REDIRECTS, **kwargs)  # type: ignore[arg-type]
