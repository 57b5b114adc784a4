"""Several "hosts" on one machine: Linux network namespaces made and removed by a test.

Layout (one lab per test run; X is a free third octet picked at start):

    root namespace (PostgreSQL, RabbitMQ on 127.0.0.1)
      veth rd<id>r  10.213.X.254 --+
                                   |   namespace radraft-<id>-switch: bridge br0
      ns radraft-<id>-node   eth0 10.213.X.1 --+
      ns radraft-<id>-w1     eth0 10.213.X.2 --+  (every host is a veth on the bridge)
      ...

Hosts reach each other directly over the bridge. They reach the root namespace's services
through :class:`TcpForwarder` threads listening on 10.213.X.254 and connecting to 127.0.0.1:
the services stay bound to loopback and nothing but this lab's /24 is routed. No forwarding
sysctl, NAT or firewall rule of the machine is touched. :meth:`NetLab.close` kills the
processes started in the lab and deletes its namespaces and root veth, also after a failure.
"""

from __future__ import annotations

import ipaddress
import os
import selectors
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

IP = "/usr/sbin/ip"
SUBNET_BASE = "10.213"
ROOT_HOST = 254


class NetLabError(RuntimeError):
    """An `ip` command of the lab failed (the message has the command and its stderr)."""


def _ip(*args: str, netns: str | None = None) -> str:
    argv = [IP, *(["-n", netns] if netns else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise NetLabError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result.stdout


def _free_octet() -> int:
    """A third octet no interface of this machine uses yet under 10.213.0.0/16."""
    used = set()
    for line in _ip("-o", "-4", "addr", "show").splitlines():
        for word in line.split():
            if word.startswith(SUBNET_BASE + "."):
                used.add(int(word.split(".")[2]))
    start = os.getpid() % 200 + 20
    for offset in range(200):
        octet = (start + offset - 20) % 200 + 20
        if octet not in used:
            return octet
    raise NetLabError("no free 10.213.X.0/24 subnet for the lab")


@dataclass(frozen=True)
class Host:
    """One simulated host: a network namespace with one address on the lab's bridge."""

    name: str
    netns: str
    address: str


@dataclass
class TcpForwarder:
    """Accepts on (listen_host, listen_port) and pipes each connection to target."""

    listen_host: str
    listen_port: int
    target: tuple[str, int]
    _server: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.listen_host, self.listen_port))
        server.listen(128)
        server.settimeout(0.2)
        self._server = server
        thread = threading.Thread(target=self._accept_loop, daemon=True,
                                  name=f"forward-{self.listen_port}")
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._pipe, args=(client,), daemon=True)
            thread.start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        client.settimeout(None)
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for end in peers:
                selector.register(end, selectors.EVENT_READ)
            open_ends = 2
            while open_ends and not self._stop.is_set():
                for key, _ in selector.select(timeout=0.5):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if data:
                        try:
                            peers[sock].sendall(data)
                        except OSError:
                            open_ends = 0
                        continue
                    # One side closed: half-close the other so protocols finish cleanly.
                    selector.unregister(sock)
                    open_ends -= 1
                    try:
                        peers[sock].shutdown(socket.SHUT_WR)
                    except OSError:
                        open_ends = 0
        client.close()
        upstream.close()

    def close(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()


class NetLab:
    """Namespaces on one bridge, a root-namespace address, forwarders and processes."""

    def __init__(self) -> None:
        self.lab_id = f"{os.getpid() % 100000}"
        self.octet = _free_octet()
        self.network = ipaddress.ip_network(f"{SUBNET_BASE}.{self.octet}.0/24")
        self.switch = f"radraft-{self.lab_id}-switch"
        self.root_if = f"rd{self.lab_id}r"
        self.root_address = f"{SUBNET_BASE}.{self.octet}.{ROOT_HOST}"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        self._forwarders: list[TcpForwarder] = []
        self._processes: list[subprocess.Popen[Any]] = []

    def open(self) -> None:
        self._add_namespace(self.switch)
        _ip("link", "add", "br0", "type", "bridge", netns=self.switch)
        _ip("link", "set", "br0", "up", netns=self.switch)
        # The root namespace's leg: its address is where the forwarders listen.
        peer = f"rd{self.lab_id}R"
        _ip("link", "add", self.root_if, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", self.switch)
        _ip("link", "set", peer, "master", "br0", "up", netns=self.switch)
        _ip("addr", "add", f"{self.root_address}/24", "dev", self.root_if)
        _ip("link", "set", self.root_if, "up")

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("link", "set", "lo", "up", netns=name)

    def add_host(self, name: str) -> Host:
        """A new namespace with eth0 on the bridge and the next free address."""
        index = len(self.hosts) + 1
        netns = f"radraft-{self.lab_id}-{name}"
        self._add_namespace(netns)
        inner, outer = f"rd{self.lab_id}h{index}", f"rd{self.lab_id}b{index}"
        _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
        _ip("link", "set", outer, "netns", self.switch)
        _ip("link", "set", outer, "master", "br0", "up", netns=self.switch)
        _ip("link", "set", inner, "netns", netns)
        _ip("link", "set", inner, "name", "eth0", netns=netns)
        address = f"{SUBNET_BASE}.{self.octet}.{index}"
        _ip("addr", "add", f"{address}/24", "dev", "eth0", netns=netns)
        _ip("link", "set", "eth0", "up", netns=netns)
        host = Host(name=name, netns=netns, address=address)
        self.hosts[name] = host
        return host

    def forward(self, port: int, target: tuple[str, int] | None = None) -> str:
        """Make root's 127.0.0.1:port (or `target`) reachable at root_address:port."""
        forwarder = TcpForwarder(self.root_address, port, target or ("127.0.0.1", port))
        forwarder.start()
        self._forwarders.append(forwarder)
        return f"{self.root_address}:{port}"

    def popen(
        self, host: Host, argv: Sequence[str], *, env: dict[str, str] | None = None,
        cwd: Path | None = None, stdout: IO[Any] | int | None = None,
        stderr: IO[Any] | int | None = subprocess.STDOUT, hostname: str = "",
    ) -> subprocess.Popen[Any]:
        """Start argv inside host's namespace (its own process group, killed on close).

        With `hostname`, the process also gets a UTS namespace of its own carrying that name,
        as a process on a separate machine would (gethostname() tells the hosts apart).
        """
        if hostname:
            argv = ["/usr/bin/unshare", "--uts", "/bin/sh", "-c",
                    'hostname "$0" && exec "$@"', hostname, *argv]
        process = subprocess.Popen(
            [IP, "netns", "exec", host.netns, *argv], env=env, cwd=cwd,
            stdout=stdout, stderr=stderr, start_new_session=True,
        )
        self._processes.append(process)
        return process

    def run(self, host: Host, argv: Sequence[str], timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([IP, "netns", "exec", host.netns, *argv], capture_output=True,
                              text=True, timeout=timeout, env=env, check=False)

    def close(self) -> None:
        for process in self._processes:
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        for forwarder in self._forwarders:
            forwarder.close()
        errors = []
        for name in reversed(self._namespaces):
            try:
                _ip("netns", "del", name)
            except NetLabError as exc:
                errors.append(str(exc))
        # Usually already gone with its peer in the switch namespace.
        with suppress(NetLabError):
            _ip("link", "del", self.root_if)
        if errors:
            raise NetLabError("; ".join(errors))


@contextmanager
def net_lab() -> Iterator[NetLab]:
    """A :class:`NetLab` that is always torn down, also when the test fails."""
    lab = NetLab()
    try:
        lab.open()
        yield lab
    finally:
        lab.close()
