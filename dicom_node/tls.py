"""DICOM TLS on the node's door (PS3.15 B.1 "Basic TLS Secure Transport Connection").

With `dicom.tls_cert` and `dicom.tls_key` every connection is TLS; with `dicom.tls_ca` the
sender must present a certificate that CA signed (mutual authentication). `dicom.tls_peers`
({calling AE title: certificate common name}) ties each AE title to the certificate allowed
to use it: an association whose calling AE is not listed, or whose certificate names someone
else, is rejected (A-ASSOCIATE-RJ permanent, reason 3 "calling AE title not recognized").

The handshake is not done in the accept loop (a peer that opens a connection and sends
nothing would hold every other sender): the socket is wrapped without a handshake, which
OpenSSL then performs on the association's first read, in the association's own thread,
under the node's network timeout.
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Callable

from pynetdicom import evt

from radraft.core.errors import ConfigError
from radraft.core.log_safe import safe
from radraft.core.peers import cert_common_name
from radraft.core.settings import DicomSettings
from radraft.core.tls import server_context

log = logging.getLogger(__name__)

# A-ASSOCIATE-RJ: rejected permanent, service-user, calling AE title not recognized.
_REJECT_CALLING_AE = (0x01, 0x01, 0x03)


def node_context(dicom: DicomSettings) -> ssl.SSLContext | None:
    """The node's server context, or None without a certificate; ConfigError says why not."""
    if not (dicom.tls_cert and dicom.tls_key):
        if dicom.tls_peers or dicom.tls_ca:
            raise ConfigError("dicom.tls_ca / dicom.tls_peers need dicom.tls_cert and "
                              "dicom.tls_key (TLS is off without them)")
        return None
    if dicom.tls_peers and not dicom.tls_ca:
        raise ConfigError("dicom.tls_peers needs dicom.tls_ca: without client certificates "
                          "there is no identity to check")
    try:
        return server_context(dicom.tls_cert, dicom.tls_key, dicom.tls_ca)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"dicom.tls_cert / tls_key / tls_ca: {exc}") from exc


def wrap(connection: socket.socket, context: ssl.SSLContext | None,
         timeout_s: float) -> socket.socket:
    """`connection` as a server-side TLS socket (handshake deferred), or as it is."""
    if context is None:
        return connection
    connection.settimeout(timeout_s)  # a stalled handshake ends, it does not hang a thread
    return context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)


def identity_check(peers: dict[str, str]) -> Callable[[evt.Event], None]:
    """EVT_REQUESTED handler: the calling AE title must be listed in dicom.tls_peers and the
    peer's certificate must carry the common name listed for it."""

    def check(event: evt.Event) -> None:
        assoc = event.assoc
        # The A-ASSOCIATE-RQ as received (requestor.ae_title is filled in only later).
        calling = str(getattr(assoc.requestor.primitive, "calling_ae_title", "")).strip()
        sock = getattr(assoc.dul.socket, "socket", None)
        name = cert_common_name(sock.getpeercert()) if isinstance(sock, ssl.SSLSocket) \
            else None
        expected = peers.get(calling)
        if expected is not None and name == expected:
            return
        log.warning("association from AE %s refused: certificate %s is not the one "
                    "dicom.tls_peers names for it", safe(calling), safe(name or "none"))
        assoc.acse.send_reject(*_REJECT_CALLING_AE)
        evt.trigger(assoc, evt.EVT_REJECTED, {})
        assoc.kill()

    return check
