"""STOW-RS on the console's port: `POST /dicomweb/studies` (PS3.18 10.5).

Authenticated by a bearer token per sending system (`dicomweb.senders.<name>: <token>`),
never by the console's login cookie; the body streams through the node's receive path
(`radraft.dicom_node.stow_receive`) part by part, each part stored before the next is read
to its end, so the memory a request costs is one chunk, whatever its size.
"""

from __future__ import annotations

import json
import logging
import secrets

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from radraft.core.settings import Settings
from radraft.dicom_node.stow_receive import (
    StowReceiver,
    StowRequestError,
    StowUpload,
    new_upload,
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


async def _store_ready(receiver: StowReceiver, upload: StowUpload, sender: str) -> None:
    while upload.ready:
        part = upload.ready.pop(0)
        upload.outcomes.append(await run_in_threadpool(receiver.store, part.path, sender))


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
    try:
        async for chunk in request.stream():
            upload.feed(chunk)
            await _store_ready(receiver, upload, sender)
        upload.finish()
        await _store_ready(receiver, upload, sender)
    except StowRequestError as exc:
        log.warning("STOW-RS from %s refused %d: %s", sender, exc.http_status, exc.reason)
        return _problem(exc.http_status, exc.reason)
    except ClientDisconnect:
        log.warning("STOW-RS from %s: connection dropped after %d bytes", sender,
                    upload.received)
        raise
    finally:
        upload.discard()  # whatever was not stored leaves no file behind
    status, body = response_body(upload.outcomes)
    stored = sum(1 for o in upload.outcomes if o.status == 0)
    log.info("STOW-RS from %s: %d stored, %d failed", sender, stored,
             len(upload.outcomes) - stored)
    return Response(json.dumps(body), status_code=status, media_type=DICOM_JSON)
