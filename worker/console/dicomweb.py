"""STOW-RS on the console's port: `POST /dicomweb/studies` (PS3.18 10.5).

Authenticated by a bearer token per sending system (`dicomweb.senders.<name>: <token>`),
never by the console's login cookie; the body streams through the node's receive path
(`radraft.dicom_node.stow_receive`) part by part, each part stored before the next is read
to its end, so the memory a request costs is one chunk, whatever its size.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from radraft.core.settings import Settings
from radraft.dicom_node.stow_receive import StowReceiver, new_upload
from radraft.dicom_node.stow_upload import (
    StowOutcome,
    StowRequestError,
    StowUpload,
    response_body,
)

log = logging.getLogger(__name__)
router = APIRouter()

DICOM_JSON = "application/dicom+json"


def sender_of(settings: Settings, authorization: str) -> str | None:
    """The configured sender whose token this is (compared in constant time), or None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    found = None
    for name, secret in settings.dicomweb.senders.items():
        if secrets.compare_digest(token.encode(), secret.get_secret_value().encode()):
            found = name
    return found


def _problem(status: int, reason: str, **headers: str) -> Response:
    return Response(json.dumps({"detail": reason}), status_code=status,
                    media_type="application/json", headers=headers)


# Parts stored per batch (one index transaction); the next batch is gathered while one is
# being stored, so the body keeps streaming in.
BATCH = 16


class _Storing:
    """The parts of one request stored on a thread, a batch at a time, one batch at a time
    (batches of several requests overlap; each waits mostly on fsync and its commit)."""

    def __init__(self, receiver: StowReceiver, upload: StowUpload, sender: str) -> None:
        self.receiver, self.upload, self.sender = receiver, upload, sender
        self.task: asyncio.Task[list[StowOutcome]] | None = None

    async def _settle(self) -> None:
        if self.task is not None:
            task, self.task = self.task, None
            self.upload.outcomes.extend(await task)

    async def take_ready(self, *, last: bool = False) -> None:
        if not self.upload.ready or (len(self.upload.ready) < BATCH and not last
                                     and self.task is not None and not self.task.done()):
            return
        await self._settle()
        batch = [part.path for part in self.upload.ready]
        self.upload.ready.clear()
        self.task = asyncio.ensure_future(
            run_in_threadpool(self.receiver.store_batch, batch, self.sender))

    async def finish(self) -> None:
        """Wait for the batch still being stored (also when the request failed: a file is
        never left half-placed)."""
        await self._settle()


@router.post("/dicomweb/studies")
async def stow(request: Request) -> Response:
    settings: Settings = request.app.state.console.settings
    receiver: StowReceiver | None = request.app.state.stow
    if receiver is None:
        return _problem(404, "STOW-RS is off: no dicomweb.senders configured")
    sender = sender_of(settings, request.headers.get("authorization", ""))
    if sender is None:
        return _problem(401, "a bearer token of dicomweb.senders is required",
                        **{"WWW-Authenticate": 'Bearer realm="radraft STOW-RS"'})
    limits = settings.dicomweb
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_request_bytes:
        return _problem(413, "request over dicomweb.max_request_bytes")
    guard = receiver.handler.disk
    try:
        upload = new_upload(receiver, request.headers.get("content-type", ""),
                            max_instance_bytes=limits.max_instance_bytes,
                            max_request_bytes=limits.max_request_bytes,
                            room_for=guard.has_room)
    except StowRequestError as exc:
        log.warning("STOW-RS from %s refused %d: %s", sender, exc.http_status, exc.reason)
        return _problem(exc.http_status, exc.reason)
    storing = _Storing(receiver, upload, sender)
    try:
        async for chunk in request.stream():
            upload.feed(chunk)
            await storing.take_ready()
        upload.finish()
        await storing.take_ready(last=True)
        await storing.finish()
    except StowRequestError as exc:
        log.warning("STOW-RS from %s refused %d: %s", sender, exc.http_status, exc.reason)
        return _problem(exc.http_status, exc.reason)
    except ClientDisconnect:
        log.warning("STOW-RS from %s: connection dropped after %d bytes", sender,
                    upload.received)
        raise
    finally:
        await storing.finish()
        upload.discard()  # whatever was not stored leaves no file behind
    status, body = response_body(upload.outcomes)
    stored = sum(1 for o in upload.outcomes if o.status == 0)
    log.info("STOW-RS from %s: %d stored, %d failed", sender, stored,
             len(upload.outcomes) - stored)
    return Response(json.dumps(body), status_code=status, media_type=DICOM_JSON)
