"""Scale-out across simulated hosts (tests/netns.py): the namespace plumbing itself, then
radraft's node, workers and model servers spread over namespaces."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from netns import IP, NetLab, net_lab

PY = sys.executable

ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7007)); s.listen(1); print("ready", flush=True)
c, peer = s.accept(); c.sendall(peer[0].encode() + b" " + c.recv(100)); c.close()
"""

ECHO_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
c.sendall(b"hello"); print(c.recv(100).decode())
"""

PG_CLIENT = """
import sys, psycopg
with psycopg.connect(sys.argv[1], connect_timeout=10) as conn:
    print(conn.execute("select 40 + 2").fetchone()[0])
"""

AMQP_CLIENT = """
import sys, kombu
with kombu.Connection(sys.argv[1], connect_timeout=10) as conn:
    conn.connect(); print("amqp", conn.connected)
"""


def _namespaces() -> str:
    return subprocess.run([IP, "netns", "list"], capture_output=True, text=True,
                          check=True).stdout


def _start_echo(lab: NetLab, host_name: str) -> subprocess.Popen[str]:
    host = lab.hosts[host_name]
    server = lab.popen(host, [PY, "-c", ECHO_SERVER, host.address], stdout=subprocess.PIPE)
    assert server.stdout is not None
    assert server.stdout.readline().strip() == b"ready"
    return server


def test_hosts_talk_over_the_bridge_and_not_over_loopback() -> None:
    with net_lab() as lab:
        a, b = lab.add_host("a"), lab.add_host("b")
        server = _start_echo(lab, "a")
        answer = lab.run(b, [PY, "-c", ECHO_CLIENT, a.address, "7007"])
        assert answer.returncode == 0, answer.stdout + answer.stderr
        # The server saw b's lab address: the packet crossed the bridge, not a shortcut.
        assert answer.stdout.split() == [b.address, "hello"]
        server.wait(timeout=10)
        # Each namespace has its own loopback: the root's 127.0.0.1 services are not there.
        refused = lab.run(b, [PY, "-c", ECHO_CLIENT, "127.0.0.1", "5432"])
        assert refused.returncode != 0
        assert "ConnectionRefused" in refused.stderr


def test_postgresql_and_rabbitmq_reachable_from_a_namespace_via_forwarders() -> None:
    with net_lab() as lab:
        worker = lab.add_host("w1")
        pg = lab.forward(5432)
        amqp = lab.forward(5672)
        result = lab.run(worker, [PY, "-c", PG_CLIENT, f"postgresql://postgres@{pg}/postgres"])
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "42"
        result = lab.run(worker, [PY, "-c", AMQP_CLIENT, f"amqp://guest:guest@{amqp}//"])
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "amqp True"


def test_lab_removes_its_namespaces_and_processes_even_after_a_failure() -> None:
    lab_id = ""
    sleeper: subprocess.Popen[bytes] | None = None
    with pytest.raises(ZeroDivisionError), net_lab() as lab:
        lab_id, root_if = lab.lab_id, lab.root_if
        sleeper = lab.popen(lab.add_host("n"), ["/bin/sleep", "600"])
        assert f"radraft-{lab_id}-n" in _namespaces()
        1 / 0  # noqa: B018 - the failure the lab must clean up after
    assert sleeper is not None and sleeper.poll() is not None
    assert f"radraft-{lab_id}-" not in _namespaces()
    deadline = time.monotonic() + 10
    # veth deletion in the kernel finishes asynchronously after the namespace goes.
    while time.monotonic() < deadline:
        links = subprocess.run([IP, "-o", "link", "show"], capture_output=True, text=True,
                               check=True).stdout
        if root_if not in links:
            break
        time.sleep(0.2)
    assert root_if not in links
