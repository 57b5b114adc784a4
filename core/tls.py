"""TLS contexts for radraft's doors (DICOM, HL7) and its outbound connections.

TLS 1.2 at least, the standard library's default ciphers. A server with a CA configured
requires client certificates signed by it (mutual authentication); a client always checks
the server's certificate chain and host name (against `tls_ca`, else the system's trust
store) and presents its own certificate when one is configured.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Protocol


class TlsClientSettings(Protocol):
    host: str
    tls: bool
    tls_ca: Path | None
    tls_cert: Path | None
    tls_key: Path | None


def server_context(cert: Path, key: Path, ca: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if ca is not None:
        context.load_verify_locations(ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def client_context(dest: TlsClientSettings) -> ssl.SSLContext | None:
    """The context for an outbound connection to `dest`, or None when `dest.tls` is off."""
    if not dest.tls:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=str(dest.tls_ca) if dest.tls_ca else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if dest.tls_cert is not None:
        context.load_cert_chain(dest.tls_cert, dest.tls_key)
    return context
