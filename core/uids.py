"""Deterministic identifiers derived from a job key (DESIGN.md "Identity").

A re-delivered SR or HL7 message carries the same UID / control id, so it replaces
itself at the PACS and the RIS instead of creating a duplicate.
"""

from __future__ import annotations

import hashlib
import re
import uuid

_NAMESPACE = uuid.UUID("6f1c2a9e-3b7d-5e4f-8a21-9d0c7b3e5f10")


def derived_uid(uid_root: str, *key: str) -> str:
    """A DICOM UID (≤ 64 chars) determined by `key` under `uid_root` ("2.25": UUID form)."""
    digest = uuid.uuid5(_NAMESPACE, "\x1f".join(key))
    if uid_root == "2.25":
        return f"2.25.{digest.int}"
    room = 64 - len(uid_root) - 1
    number = str(digest.int)[:room].lstrip("0") or "1"
    return f"{uid_root}.{number}"


def control_id(*key: str) -> str:
    """An HL7 message control id (MSH-10, at most 20 characters) determined by `key`."""
    return hashlib.sha256("\x1f".join(key).encode()).hexdigest()[:20].upper()


_UID_COMPONENT = re.compile(r"0|[1-9][0-9]*")


def is_valid_uid(value: str) -> bool:
    """True for a DICOM UID (PS3.5 9.1): digits in dot-separated components, no leading
    zero in a component, at most 64 characters. Nothing else may name a file or folder."""
    if not 0 < len(value) <= 64:
        return False
    return all(_UID_COMPONENT.fullmatch(part) for part in value.split("."))
