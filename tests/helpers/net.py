"""Ports: a free one to listen on, and waiting until a server listens."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    """A TCP port nothing listens on now (the OS's pick; a server binds it right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def wait_port(
    port: int, *, host: str = "127.0.0.1", timeout: float = 60,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Until something accepts connections on host:port; fails at once if `process` (the
    server being waited for) exits first, and after `timeout` seconds otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{process.args!r} exited with {process.returncode} before "
                                 f"listening on {host}:{port}")
        if listening(port, host):
            return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {host}:{port} after {timeout} s")
