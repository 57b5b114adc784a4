"""An MLLP peer standing in for a RIS or an ED system: keeps every message it receives
(duplicates too, so a test can count what was sent) and answers each with AA.

It also files each result the way many RIS/EHR result stores do: one result per
(placer order, filler order, OBR-4 service); a later result for the same key replaces the
earlier one (`Received.filed`)."""

from __future__ import annotations

import socket
import socketserver
import threading
from dataclasses import dataclass, field

import hl7

FileKey = tuple[str, str, str]


@dataclass
class Received:
    raw: list[bytes] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # (OBR-2 placer, OBR-3 filler, OBR-4.1 service) -> the result that is filed there now.
    filed: dict[FileKey, bytes] = field(default_factory=dict)

    def file(self, message: bytes) -> None:
        """Replace the result filed under the message's order and service (lock held)."""
        parsed = hl7.parse(message.decode("utf-8", errors="replace"))
        try:
            obr = parsed.segment("OBR")
        except KeyError:
            return  # not a result (ADT, ORM...)
        self.filed[(str(obr[2]), str(obr[3]), str(obr[4][0][0]))] = message

    def filed_results(self) -> dict[FileKey, hl7.Message]:
        with self.lock:
            return {key: hl7.parse(m.decode("utf-8", errors="replace"))
                    for key, m in self.filed.items()}

    def messages(self) -> list[hl7.Message]:
        with self.lock:
            return [hl7.parse(m.decode("utf-8", errors="replace")) for m in self.raw]


class MllpPeer:
    """A threaded MLLP server on 127.0.0.1 (a free port); `stop()` closes it."""

    def __init__(self) -> None:
        self.received = Received()
        received = self.received

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock: socket.socket = self.request
                sock.settimeout(60)
                buffer = b""
                while True:
                    try:
                        chunk = sock.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                    while b"\x1c\r" in buffer:
                        frame, buffer = buffer.split(b"\x1c\r", 1)
                        message = frame.lstrip(b"\x0b")
                        with received.lock:
                            received.raw.append(message)
                            received.file(message)
                        control = hl7.parse(message.decode("utf-8", errors="replace"))[
                            "MSH"][0][10]
                        ack = (f"MSH|^~\\&|PEER|HOSP|RADRAFT|HOSP|||ACK|A{control}|P|2.5.1\r"
                               f"MSA|AA|{control}\r")
                        sock.sendall(b"\x0b" + ack.encode() + b"\x1c\r")

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
