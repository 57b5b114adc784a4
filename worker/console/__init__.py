"""The web console (README "Web console"): `create_app(settings, sessions)` and the
`radraft serve` component `ConsoleServer`."""

from radraft.worker.console.app import create_app
from radraft.worker.console.server import ConsoleServer

__all__ = ["ConsoleServer", "create_app"]
