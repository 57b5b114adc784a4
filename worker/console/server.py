"""The console as a `radraft serve` component: uvicorn in a thread of its own.

The socket is bound in `start()`, in the caller's thread, so a port in use fails `radraft
serve` at once with the OSError (uvicorn alone would log it and exit its thread).
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.errors import ConfigError
from radraft.core.settings import Settings
from radraft.dicom_node.rules import RulesWatcher
from radraft.worker.console.app import create_app
from radraft.worker.enqueue import Enqueue
from radraft.worker.escalation import Escalator

log = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class ConsoleServer:
    name = "web-console"

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], *,
                 rules: RulesWatcher | None = None, enqueue: Enqueue | None = None) -> None:
        self._settings = settings
        self.app = create_app(settings, sessions, rules=rules, enqueue=enqueue)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = settings.web.port

    def start(self) -> None:
        web = self._settings.web
        try:
            self._socket = bind(web.host, web.port)
        except OSError as exc:
            raise ConfigError(f"web console on {web.host}:{web.port} cannot listen: {exc}") \
                from exc
        self.port = int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, proxy_headers=True,
            forwarded_allow_ips=web.trusted_proxies,
            server_header=False, timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        # uvicorn installs signal handlers only in the main thread; radraft serve owns them.
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]},
                                        name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"web console on {web.host}:{web.port} did not start")
            time.sleep(0.02)
        log.info("web console on http://%s:%d", web.host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._socket is not None:
            self._socket.close()


def console_components(settings: Settings, sessions: sessionmaker[Session],
                       rules: RulesWatcher) -> list[ConsoleServer | Escalator]:
    """What `radraft serve` appends: the console (sharing the node's rules watcher, so a
    reload in the console is the node's) and the ED escalation loop."""
    from radraft.worker.celery_app import make_celery  # Celery only where it is used
    from radraft.worker.enqueue import celery_enqueue

    enqueue = celery_enqueue(make_celery(settings))
    return [ConsoleServer(settings, sessions, rules=rules, enqueue=enqueue),
            Escalator(settings, sessions, enqueue)]
