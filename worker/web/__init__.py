"""The web console (README "Web console"): `create_app(settings, sessions)` and the
`radraft serve` component `ConsoleServer`."""

from radraft.worker.web.app import create_app
from radraft.worker.web.server import ConsoleServer

__all__ = ["ConsoleServer", "create_app"]
