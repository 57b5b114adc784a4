"""The node under a memory limit while the memory attacks of issue 25 (item 1) are sent:
PDUs declaring 512 MiB then stalling, and a deflate bomb. A good C-STORE still succeeds,
the server stays up, and the stalled connections are closed by the server's timeout."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from doors_helpers import running_serve
from node_helpers import ct_phase_study, storescu

SEEDS = Path(__file__).resolve().parents[1] / "data" / "fuzz" / "dicom"
LIMIT = 3 << 30  # address space: ~1.5 GiB above what radraft serve maps when idle


def _send_and_hold(port: int, stream: bytes, closed: list[bool], hold_s: float) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=hold_s) as sock:
        first = 6 + int.from_bytes(stream[2:6], "big")
        sock.sendall(stream[:first])
        sock.recv(65536)  # the A-ASSOCIATE-AC
        sock.sendall(stream[first:])
        try:
            while sock.recv(65536):
                pass
            closed.append(True)  # the server gave up on it
        except (TimeoutError, OSError):
            closed.append(False)


def test_memory_attacks_under_a_limit_leave_a_good_store_working(
    tmp_path: Path, db_url: str,
) -> None:
    declared = (SEEDS / "pdu-declares-512mib.bin").read_bytes()
    bomb = (SEEDS / "deflate-bomb-256mib.bin").read_bytes()
    [good] = ct_phase_study(tmp_path / "good", phases=("A",), slices=1)
    with running_serve(tmp_path / "s", db_url, memory_limit=LIMIT,
                       dicom={"network_timeout_s": 10}) as served:
        closed: list[bool] = []
        attacks = [threading.Thread(target=_send_and_hold,
                                    args=(served.dicom_port, declared, closed, 60))
                   for _ in range(6)]
        attacks.append(threading.Thread(target=_send_and_hold,
                                        args=(served.dicom_port, bomb, [], 60)))
        for thread in attacks:
            thread.start()
        outcome = storescu(good, served.dicom_port, timeout=120)
        for thread in attacks:
            thread.join()
        assert outcome.status == 0x0000, outcome
        assert served.alive() and served.echo() == 0x0000
        assert closed == [True] * 6  # every stalled connection was closed by the server
