"""STOW-RS client (PS3.18 10.5): send stored Part 10 bytes as they are to a DICOMweb PACS.

The bytes are never re-encoded (a rebuilt object would carry new dates), so the request is
written by hand as one `multipart/related; type="application/dicom"` part rather than through
dicomweb-client, whose `store_instances` takes pydicom datasets and writes them again.

Outcome (PS3.18 table 10.5.3-1), mapped onto the outbox's classes:

    200 OK                       stored                              -> delivered
    202 Accepted                 stored with warnings, or some failed:
                                 our instance in Failed SOP Sequence -> permanent (its reason)
                                 otherwise                           -> delivered
    409 Conflict                 refused (Failure Reason given)      -> permanent
    400, 401, 403, 404, 413, 415 request or credentials wrong        -> permanent (an admin)
    408, 429, 5xx, no answer     may go away                         -> transient
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from radraft.core.errors import PermanentDeliveryError, TransientDeliveryError

# Tags of the STOW-RS response (DICOM JSON, PS3.18 F.2).
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"

# PS3.18 table 10.5.3-2/3 reasons a person can act on.
FAILURE_REASONS = {
    0x0110: "processing failure",
    0x0122: "referenced SOP class not supported",
    0xA700: "out of resources",
    0xA900: "data set does not match SOP class",
    0xC000: "cannot understand",
    0xC122: "referenced transfer syntax not supported",
    0xC409: "different study instance UID",  # PS3.18 C409: study UID differs from the URL
}

TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class StowTarget:
    """A DICOMweb service root (`https://pacs/dicom-web`) and its bearer token."""

    url: str
    token: str = ""
    timeout_s: float = 30.0
    verify: bool | str = True

    def __str__(self) -> str:
        return self.url


def _multipart(payload: bytes) -> tuple[bytes, str]:
    boundary = f"radraft-{uuid.uuid4().hex}"
    body = b"".join([
        f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(),
        payload,
        f"\r\n--{boundary}--\r\n".encode(),
    ])
    content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return body, content_type


def _reasons(answer: dict[str, Any], sequence: str, field: str) -> dict[str, int]:
    """SOP Instance UID -> reason code of every item of one response sequence."""
    items = (answer.get(sequence) or {}).get("Value") or []
    found: dict[str, int] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        uids = (item.get(REFERENCED_SOP_INSTANCE_UID) or {}).get("Value") or [""]
        codes = (item.get(field) or {}).get("Value") or [0]
        try:
            found[str(uids[0])] = int(codes[0])
        except (TypeError, ValueError):
            found[str(uids[0])] = 0
    return found


def _answer(response: httpx.Response) -> dict[str, Any]:
    """The response's DICOM JSON object, or {} when the PACS sent none (or XML)."""
    if "json" not in response.headers.get("content-type", ""):
        return {}
    try:
        data = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    if isinstance(data, list):
        data = data[0] if data and isinstance(data[0], dict) else {}
    return data if isinstance(data, dict) else {}


def _describe(code: int) -> str:
    return f"0x{code:04X} {FAILURE_REASONS.get(code, 'failure')}"


def classify_stow_response(response: httpx.Response, sop_uid: str) -> str:
    """The outcome text of a delivered instance; raises Transient/PermanentDeliveryError."""
    status = response.status_code
    answer = _answer(response)
    failed = _reasons(answer, FAILED_SOP_SEQUENCE, FAILURE_REASON)
    if status in TRANSIENT_HTTP:
        raise TransientDeliveryError(f"STOW-RS HTTP {status}")
    if status == 409 or (status == 202 and sop_uid in failed):
        code = failed.get(sop_uid, next(iter(failed.values()), 0))
        if code & 0xFF00 == 0xA700:  # out of resources may go away
            raise TransientDeliveryError(f"STOW-RS HTTP {status}: {_describe(code)}")
        raise PermanentDeliveryError(f"STOW-RS HTTP {status}: {_describe(code)}")
    if status in (200, 202):
        warnings = _reasons(answer, REFERENCED_SOP_SEQUENCE, WARNING_REASON)
        if warnings.get(sop_uid):
            return f"STOW-RS HTTP {status}, warning 0x{warnings[sop_uid]:04X}"
        return f"STOW-RS HTTP {status}"
    raise PermanentDeliveryError(f"STOW-RS HTTP {status}: {response.reason_phrase}")


def stow_bytes(target: StowTarget, payload: bytes, sop_uid: str) -> str:
    """POST one Part 10 file to `{url}/studies`; returns the outcome text when delivered."""
    body, content_type = _multipart(payload)
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    try:
        response = httpx.post(
            f"{target.url.rstrip('/')}/studies", content=body, headers=headers,
            timeout=target.timeout_s, verify=target.verify,
        )
    except httpx.HTTPError as exc:  # connection refused, timeout, TLS: the PACS may come back
        raise TransientDeliveryError(f"STOW-RS {target}: {type(exc).__name__}: {exc}") from exc
    return classify_stow_response(response, sop_uid)
