"""A remote DICOM application entity and the association every client call opens."""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pynetdicom import AE
from pynetdicom.association import Association

from radraft.core.errors import PermanentDeliveryError, TransientDeliveryError

# A-ASSOCIATE-RJ result values (PS3.8 9.3.4).
_REJECTED_PERMANENT = 0x01


@dataclass(frozen=True, slots=True)
class Peer:
    """Where to connect: host, port, called AE title, our calling AE title, and a timeout."""

    host: str
    port: int
    ae_title: str
    calling_ae_title: str = "RADRAFT"
    timeout_s: float = 30.0
    # DICOM TLS to the peer (core.tls.client_context): chain and host name checked.
    tls: ssl.SSLContext | None = None

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def _new_ae(peer: Peer) -> AE:
    ae = AE(ae_title=peer.calling_ae_title)
    ae.acse_timeout = peer.timeout_s
    ae.dimse_timeout = peer.timeout_s
    ae.network_timeout = peer.timeout_s
    ae.connection_timeout = peer.timeout_s
    return ae


@contextmanager
def associate(
    peer: Peer, contexts: Sequence[tuple[str, Sequence[str]]], **kwargs: Any,
) -> Iterator[Association]:
    """Open an association requesting `contexts` [(abstract syntax, transfer syntaxes)].

    Raises PermanentDeliveryError when the peer rejects permanently (wrong AE title, no
    supported context) and TransientDeliveryError for refused connections, aborts, timeouts
    and transient rejections.
    """
    ae = _new_ae(peer)
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, list(syntaxes))
    if peer.tls is not None:
        kwargs["tls_args"] = (peer.tls, peer.host)
    assoc = ae.associate(peer.host, peer.port, ae_title=peer.ae_title, **kwargs)
    if assoc.is_rejected:
        rsp = assoc.acceptor.primitive
        result = getattr(rsp, "result", None)
        why = f"{peer}: association rejected ({getattr(rsp, 'result_str', result)}, " \
              f"reason {getattr(rsp, 'diagnostic', '?')})"
        if result == _REJECTED_PERMANENT:
            raise PermanentDeliveryError(why)
        raise TransientDeliveryError(why)
    if not assoc.is_established:
        reason = "aborted" if assoc.is_aborted else "no connection or no answer"
        raise TransientDeliveryError(f"{peer}: association failed ({reason})")
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()
