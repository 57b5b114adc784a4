"""What the listener decides about one message before touching the database.

AR (refused for reasons unrelated to content, HL7 table 0357): 200 unsupported message type,
201 unsupported event, 202 unsupported processing id, 203 unsupported version. AE (content is
wrong): 101 a required MSH field is empty. A frame with no usable MSH cannot be stored (there is
no header to key it on) and is answered AR 100 at once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from radraft.core.errors import Hl7Error
from radraft.ehr.er7 import Message, parse

SUPPORTED_VERSIONS = frozenset({"2.3", "2.3.1", "2.4", "2.5", "2.5.1"})
# ADT events that carry a PID worth keeping (admit, transfer, discharge, register, update,
# cancels, merge, identifier change); other ADT events are refused (AR 201), not dropped.
ADT_EVENTS = frozenset({"A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A11", "A12",
                        "A13", "A28", "A31", "A40", "A47"})
EVENTS: dict[str, frozenset[str]] = {
    "ADT": ADT_EVENTS, "ORM": frozenset({"O01"}), "OMI": frozenset({"O23"}),
    "OMG": frozenset({"O19"}), "ORU": frozenset({"R01"}),
}


@dataclass(frozen=True)
class Intake:
    """One parsed message: its duplicate key and, when it is refused or wrong, the answer."""

    msg: Message | None
    control_id: str = ""
    facility: str = ""
    sha256: str = ""
    code: str = ""  # "AR"/"AE" decided before applying; "" when it is to be applied
    error: Hl7Error | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.control_id, self.facility, self.sha256)


def intake(raw: bytes, *, processing_ids: frozenset[str]) -> Intake:
    try:
        msg = parse(raw)
    except Hl7Error as exc:
        return Intake(None, code="AR", error=exc)
    base = Intake(msg, msg.get("MSH", 10)[:64], msg.get("MSH", 4)[:128],
                  hashlib.sha256(raw).hexdigest())
    problem = _check(msg, processing_ids)
    if problem is None:
        return base
    code = "AR" if problem.reject else "AE"
    return Intake(base.msg, base.control_id, base.facility, base.sha256, code, problem)


def _check(msg: Message, processing_ids: frozenset[str]) -> Hl7Error | None:
    kind, event = msg.get("MSH", 9, 1), msg.get("MSH", 9, 2)
    for index, name in ((9, "message type"), (10, "message control id"),
                        (11, "processing id"), (12, "version id")):
        if not msg.get("MSH", index):
            return Hl7Error(f"MSH-{index} ({name}) is empty", field=index, code="101")
    if kind not in EVENTS:
        return Hl7Error(f"unsupported message type {kind[:10]!r}", field=9, code="200",
                        reject=True)
    if event not in EVENTS[kind] and not (event == "" and kind != "ADT"):
        return Hl7Error(f"unsupported event {kind}^{event[:10]}", field=9, code="201",
                        reject=True)
    processing = msg.get("MSH", 11)
    if processing not in processing_ids:
        return Hl7Error(f"processing id {processing[:5]!r} not accepted here", field=11,
                        code="202", reject=True)
    version = msg.get("MSH", 12)
    if version not in SUPPORTED_VERSIONS:
        return Hl7Error(f"unsupported HL7 version {version[:10]!r} (2.3 to 2.5.1)", field=12,
                        code="203", reject=True)
    return None


# Hl7Message.error keeps the ERR details in a readable form that a duplicate's ACK is rebuilt
# from: "PID^1^3 101: reason".
_STORED = re.compile(r"^([A-Z0-9]{3})\^(\d+)\^(\d*) (\d{3}): (.*)$", re.DOTALL)


def error_text(error: Hl7Error) -> str:
    return f"{error.segment}^{error.position}^{error.field or ''} {error.code}: {error.reason}"


def error_from_text(text: str, *, reject: bool) -> Hl7Error | None:
    found = _STORED.match(text)
    if not text:
        return None
    if found is None:
        return Hl7Error(text, code="207", reject=reject)
    segment, position, field, code, reason = found.groups()
    return Hl7Error(reason, segment=segment, position=int(position), field=int(field or 0),
                    code=code, reject=reject)
