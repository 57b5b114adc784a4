"""Shared by the door tests (issue 25): a real `radraft serve` on free ports with an admin,
and small real clients for its three doors (C-ECHO, one HL7 message, the console API)."""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from helpers.net import free_port
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

RADRAFT = str(Path(sys.executable).parent / "radraft")
ADMIN, ADMIN_PASSWORD = "alice", "admin-password-1"
VIEWER, VIEWER_PASSWORD = "vic", "viewer-password-1"
RULES = """\
rules:
  - name: ct
    match: {modality: [CT]}
    action: ignore
"""


@dataclass
class Served:
    config: Path
    log: Path
    data_dir: Path
    dicom_port: int
    hl7_port: int
    web_port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def echo(self, timeout: float = 10) -> int:
        """One C-ECHO on a new association; its status (-1: no association)."""
        ae = AE(ae_title="ECHOSCU")
        ae.add_requested_context(Verification)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        assoc = ae.associate("127.0.0.1", self.dicom_port, ae_title="RADRAFT")
        if not assoc.is_established:
            return -1
        try:
            status = assoc.send_c_echo()
            return int(status.Status) if status and "Status" in status else -1
        finally:
            assoc.release()

    def hl7(self, message: bytes, timeout: float = 10) -> bytes:
        """One framed message on a new connection; the answer's body (b"" when closed)."""
        return mllp_exchange(self.hl7_port, message, timeout)

    def admin(self) -> tuple[httpx.Client, str]:
        return login(self.base, ADMIN, ADMIN_PASSWORD)


def mllp_exchange(port: int, message: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"\x0b" + message + b"\x1c\r")
        return read_mllp(sock)


def read_mllp(sock: socket.socket) -> bytes:
    buffer = b""
    while b"\x1c\r" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        buffer += chunk
    return buffer[buffer.find(b"\x0b") + 1: buffer.find(b"\x1c\r")]


def login(base: str, user: str, password: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=60)
    answer = client.post("/api/login", json={"username": user, "password": password})
    assert answer.status_code == 200, answer.text
    return client, str(answer.json()["csrf_token"])


def hl7_message(control_id: str = "MSG1", *, event: str = "A01") -> bytes:
    return (f"MSH|^~\\&|LAB|HOSP|RADRAFT|HOSP|20260101120000||ADT^{event}^ADT_{event}"
            f"|{control_id}|P|2.5.1\rEVN|{event}|20260101120000\r"
            "PID|1||PID-DOORS-1^^^HOSP^MR||Doe^Jane||19700101|F\r").encode()


def _cli(config: Path, *args: str, stdin: str = "") -> None:
    done = subprocess.run([RADRAFT, "--config", str(config), *args], input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)
    # A second serve on the same database finds its users there already.
    assert done.returncode == 0 or "exists already" in done.stderr, done.stdout + done.stderr


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _address_space_limit(limit: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


@contextmanager
def running_serve(tmp: Path, db_url: str, *, memory_limit: int | None = None,
                  **extra: Any) -> Iterator[Served]:
    """`radraft serve` with an admin (alice) and a viewer (vic); `extra` merges into the
    configuration's top-level sections (dicom, hl7, web ...); `memory_limit`: the address
    space of the serve process (and the receivers it spawns), in bytes."""
    tmp.mkdir(parents=True, exist_ok=True)
    dicom_port, hl7_port, web_port = free_port(), free_port(), free_port()
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    data: dict[str, Any] = {
        "data_dir": str(tmp / "data"), "database_url": db_url, "rules_file": str(rules),
        "dicom": {"host": "127.0.0.1", "port": dicom_port, "min_free_bytes": 0},
        "hl7": {"host": "127.0.0.1", "port": hl7_port},
        "web": {"host": "127.0.0.1", "port": web_port},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    config = tmp / "radraft.yaml"
    config.write_text(yaml.safe_dump(data))
    _cli(config, "user", "add", ADMIN, "--role", "admin", "--password-stdin",
         stdin=ADMIN_PASSWORD + "\n")
    _cli(config, "user", "add", VIEWER, "--role", "viewer", "--password-stdin",
         stdin=VIEWER_PASSWORD + "\n")
    log = tmp / "serve.log"
    process = subprocess.Popen(
        [RADRAFT, "--config", str(config), "serve"], stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        preexec_fn=_address_space_limit(memory_limit) if memory_limit else None)
    served = Served(config, log, tmp / "data", dicom_port, hl7_port, web_port, process)
    try:
        deadline = time.monotonic() + 120
        while not all(_listening(p) for p in (dicom_port, hl7_port, web_port)):
            assert process.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, log.read_text()[-4000:]
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@dataclass
class Pki:
    """A test CA and certificates made by openssl (never checked in)."""

    folder: Path
    ca: Path

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.folder / f"{name}.crt", self.folder / f"{name}.key"


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def make_pki(folder: Path, *names: str) -> Pki:
    """A CA plus one certificate per common name in `names` (each valid for localhost and
    127.0.0.1 as a server and as a client)."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
             "/CN=radraft test CA", "-keyout", "ca.key", "-out", "ca.crt", cwd=folder)
    for name in names:
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=folder)
        (folder / f"{name}.ext").write_text(
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
            "extendedKeyUsage=serverAuth,clientAuth\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext",
                 "-out", f"{name}.crt", cwd=folder)
    return Pki(folder, folder / "ca.crt")
