"""Stopping the processes a test started."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group (a radraft command and its children), SIGKILL if it hangs.
    The process must have been started with `start_new_session=True` (its own group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
