"""Who may talk to a door: an allow-list of addresses / networks and certificate names.

Entries are an IP address ("10.1.2.3"), a network in CIDR form ("10.1.0.0/16") or a
certificate subject common name ("CN=ris.hospital.example", only meaningful over TLS with
client certificates). An empty list allows everyone (the door's other checks still apply).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from radraft.core.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def cert_common_name(peercert: Any) -> str | None:
    """The subject CN of a certificate as `ssl.SSLSocket.getpeercert()` returns it."""
    if not isinstance(peercert, dict):
        return None
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


@dataclass(frozen=True)
class AllowList:
    networks: tuple[Network, ...] = ()
    names: frozenset[str] = frozenset()

    @property
    def open(self) -> bool:
        return not self.networks and not self.names

    @classmethod
    def parse(cls, entries: Sequence[str], key: str) -> AllowList:
        networks: list[Network] = []
        names: set[str] = set()
        for index, entry in enumerate(entries):
            text = entry.strip()
            if text[:3].upper() == "CN=" and text[3:].strip():
                names.add(text[3:].strip())
                continue
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ConfigError(f"{key}[{index}]: {entry!r} is neither an address, a "
                                  "network (CIDR) nor CN=<certificate name>") from None
        return cls(tuple(networks), frozenset(names))

    def allows(self, address: str | None, common_name: str | None = None) -> bool:
        if self.open:
            return True
        if common_name is not None and common_name in self.names:
            return True
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)
