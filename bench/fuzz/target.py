"""The system under test: a real `radraft serve` on free loopback ports, and the oracles that
watch it (process alive, memory of the process tree, files outside data_dir, log lines)."""

from __future__ import annotations

import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from bench.fuzz import dicom_ul as ul
from bench.fuzz.mutate_dicom import MARKER

RADRAFT = str(Path(sys.executable).parent / "radraft")
# A raw control character (tab and newline aside) or a Unicode line break in the log, or a
# line that begins with the fuzzer's marker (every hostile value puts it right after a line
# break): a peer's value wrote (part of) a log line. Indented continuation lines of a
# traceback are radraft's own layout and cannot pass for a record.
_INJECTED = re.compile(f"[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]|^{MARKER}", re.M)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and all its descendants (from /proc)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) * 1024  # type: ignore[union-attr]
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                stack.extend(int(c) for c in children)
        except (OSError, AttributeError):
            continue
    return total


SERVE_ADDRESS_SPACE = 8 << 30


def _serve_limits() -> None:
    """A safety net for the machine, far above the 200 MB finding threshold: a server that
    would take more gets MemoryError instead of the kernel's OOM killer."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = SERVE_ADDRESS_SPACE if hard == resource.RLIM_INFINITY else min(hard,
                                                                           SERVE_ADDRESS_SPACE)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


class Target:
    def __init__(self, folder: Path, max_batch: int = 1000) -> None:
        self.folder = folder
        self.data_dir = folder / "data"
        self.log = folder / "serve.log"
        self.last_probe = ""  # what the last responsiveness probe got (for the report)
        self.dicom_port, self.hl7_port, self.web_port = _free_port(), _free_port(), _free_port()
        self.max_batch = max_batch
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.baseline_rss = 0
        self.peak_rss = 0
        self._watch: threading.Thread | None = None
        self._stop = threading.Event()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "radraft.yaml"
        self.config.write_text(yaml.safe_dump({
            "data_dir": str(self.data_dir),
            # Short server timeouts: a truncated input is given up in 1 s (DICOM) or 5 s
            # (HL7), so anything still open after 10 s is a hang.
            "dicom": {"host": "127.0.0.1", "port": self.dicom_port, "min_free_bytes": 0,
                      "network_timeout_s": 1, "stable_seconds": 3600},
            "hl7": {"host": "127.0.0.1", "port": self.hl7_port, "frame_timeout_s": 5,
                    "idle_timeout_s": 5, "max_batch_messages": max_batch},
            "web": {"host": "127.0.0.1", "port": self.web_port},
        }))
        self._before = self._outside_files()

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([RADRAFT, "--config", str(self.config), "serve"],
                                        stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
                                        cwd=self.folder, env=env, preexec_fn=_serve_limits)
        deadline = time.monotonic() + 120
        while not all(self._listening(p) for p in (self.dicom_port, self.hl7_port)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"radraft serve did not start; see {self.log}")
            time.sleep(0.2)
        time.sleep(1.0)
        self.baseline_rss = _tree_rss(self.process.pid)
        self.peak_rss = self.baseline_rss
        if self._watch is None:
            self._watch = threading.Thread(target=self._watch_memory, daemon=True)
            self._watch.start()

    def _watch_memory(self) -> None:
        while not self._stop.wait(0.05):
            process = self.process
            if process is not None and process.poll() is None:
                self.peak_rss = max(self.peak_rss, _tree_rss(process.pid))

    @staticmethod
    def _listening(port: int) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart(self) -> None:
        self.restarts += 1
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def close(self) -> None:
        self._stop.set()
        self.stop()

    # --- oracles ---------------------------------------------------------------------------
    def responsive(self) -> bool:
        """A C-ECHO and an HL7 message are answered (within 10 s each), to a sender on
        another address than the fuzzer's, as a real modality is: the fuzzer's own address
        may rightly be at its association limit (`dicom.max_associations_per_peer`) while
        its stalled connections wait for the server's read timeout."""
        stream = ul.associate_rq("RADRAFT", "PROBE", [(1, ul.VERIFICATION, [ul.IMPLICIT_LE])])
        stream += ul.p_data(1, ul.c_echo_rq(1), is_command=True) + ul.RELEASE_RQ
        try:
            echo = ul.exchange(self.dicom_port, stream, wait_s=10, source=PROBE_SOURCE).classify()
            ack = hl7_exchange(self.hl7_port, b"\x0b" + PROBE_HL7 + b"\x1c\r", 10)[0]
        except OSError as exc:
            self.last_probe = f"{type(exc).__name__}: {exc}"
            return False
        self.last_probe = f"dicom {echo}; hl7 {ack[:60]!r}"
        return echo.startswith("status-0x0000") and b"MSA|AA" in ack

    def memory_growth(self) -> int:
        return max(self.peak_rss - self.baseline_rss, 0)

    def _outside_files(self) -> set[str]:
        found = {str(p) for p in self.folder.rglob("*")
                 if self.data_dir not in p.parents and p != self.data_dir}
        found |= {str(p) for p in Path("/tmp").iterdir() if "fuzz-escape" in p.name}
        return found

    def files_outside(self) -> list[str]:
        """New files outside data_dir (besides radraft's own), and any fuzz-escape path."""
        allowed = {str(self.log), str(self.config), str(self.folder / "findings")}
        new = self._outside_files() - self._before
        return sorted(p for p in new if not any(p == a or p.startswith(a + "/")
                                                for a in allowed))

    def log_injections(self) -> list[str]:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return [m.group(0) for m in _INJECTED.finditer(text)]

    def tracebacks(self) -> int:
        return self.log.read_text(encoding="utf-8", errors="replace").count("Traceback")


PROBE_SOURCE = "127.0.0.2"  # loopback: any 127.x address reaches a server bound to 127.0.0.1
PROBE_HL7 = (b"MSH|^~\\&|FUZZ|PROBE|RADRAFT|HOSP|20260101120000||ADT^A08^ADT_A01|PROBE1|P|"
             b"2.5.1\rEVN|A08|20260101120000\rPID|1||PROBE-1^^^HOSP^MR||Probe^Paula\r")


def hl7_exchange(port: int, stream: bytes, wait_s: float,
                 half_close: bool = True) -> tuple[bytes, str]:
    """Send `stream`, half-close, read until the server closes (or `wait_s`: a hang).
    For the probe the answer is read until the first end block."""
    start = time.monotonic()
    buffer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as sock:
        try:
            sock.sendall(stream)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server closed first (it may have answered: read on)
            pass
        while True:
            remaining = start + wait_s - time.monotonic()
            if remaining <= 0:
                return buffer, "timeout"
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return buffer, "timeout"
            except OSError:
                chunk = b""
            if not chunk:
                return buffer, "closed"
            buffer += chunk
