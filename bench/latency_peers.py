"""Peers of the latency benchmark: the ED's MLLP peer, a stand-in model (in process, and as
an OpenAI-compatible server for real workers), the run's time marks."""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

REPORT = {
    "exam": "CT abdomen", "technique": "portal venous", "comparison": "none",
    "clinical_history": "benchmark",
    # Consistent with its urgent triage (a significant liver finding in an abdomen CT), so the
    # answer check lets the ED alert go.
    "findings": [{"system": "liver", "text": "stand-in urgent finding", "severity": "significant",
                  "finding_type": "SCT:52988006", "finding_site": "SCT:10200004",
                  "frames": [1]}],
    "impression": [{"rank": 1, "text": "stand-in"}], "recommendations": [],
    "triage": {"level": "urgent", "reasons": ["stand-in urgent finding"]},
    "limitations": "stand-in model",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Marks:
    """Wall-clock marks of one run (time.monotonic)."""

    last_image: float = 0.0
    complete: float = 0.0
    draft_start: float = 0.0
    outbox: float = 0.0
    alert: float = 0.0
    alerted: threading.Event = field(default_factory=threading.Event)

    def intervals(self) -> dict[str, float]:
        return {"complete": self.complete - self.last_image,
                "draft_start": self.draft_start - self.complete,
                "outbox": self.outbox - self.draft_start, "alert": self.alert - self.outbox,
                "total": self.alert - self.last_image}


class AlertPeer:
    """An MLLP peer that timestamps the first message and answers AA."""

    def __init__(self, marks: Callable[[], Marks]) -> None:
        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                buffer = b""
                while True:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    while b"\x1c\r" in buffer:
                        frame, buffer = buffer.split(b"\x1c\r", 1)
                        run = marks()
                        if not run.alerted.is_set():
                            run.alert = time.monotonic()
                            run.alerted.set()
                        msh = frame.lstrip(b"\x0b").split(b"\r", 1)[0].split(b"|")
                        control = msh[9] if len(msh) > 9 else b""
                        ack = b"MSH|^~\\&|ED|ED|RADRAFT|RADRAFT||||ACK|A" + control + \
                              b"|P|2.5\rMSA|AA|" + control + b"\r"
                        self.request.sendall(b"\x0b" + ack + b"\x1c\r")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def mllp_send(port: int, message: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"\x0b" + message + b"\x1c\r")
        reply = b""
        while not reply.endswith(b"\x1c\r"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


def orm(patient_id: str, accession: str) -> bytes:
    return ("\r".join([
        "MSH|^~\\&|RIS|HOSP|RADRAFT|HOSP|||ORM^O01|B1|P|2.3.1",
        f"PID|||{patient_id}||PHANTOM^BENCH||19600101|M",
        "PV1||E|ED^1^1",
        "ORC|NW|PL1^RIS|FL1^RIS||SC||1^once^^^^S||20261120090000",
        f"OBR|1|PL1^RIS|FL1^RIS|CTAB^CT ABDOMEN^L|||||||||||||||{accession}|RP1|SPS1||||CT",
    ]) + "\r").encode()




class ModelStandIn:
    """An OpenAI-compatible /v1/chat/completions answering REPORT as JSON: the first call
    is held `hold_first_s` (a worker can be killed inside its model call), later calls
    answer at once. `calls` records each call's arrival (time.time())."""

    def __init__(self, hold_first_s: float) -> None:
        self.calls: list[float] = []
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                stand_in.calls.append(time.time())
                if len(stand_in.calls) == 1:
                    time.sleep(hold_first_s)
                body = json.dumps({
                    "model": "stand-in",
                    "choices": [{"message": {"content": json.dumps(REPORT)},
                                 "finish_reason": "stop"}],
                    # The backend checks the server read every frame: a stand-in read all.
                    "usage": {"prompt_tokens": 10**7, "completion_tokens": 1},
                }).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the caller was killed

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
