"""radraft's exception tree.

    RadraftError
    ├── ConfigError            settings or rules file invalid (names file, line, key)
    ├── IngestError            an instance could not be stored
    ├── FrameError             a study could not be turned into frames (names the file)
    ├── ModelError             the model backend failed or answered malformed output
    │   └── VideoTruncatedError   the server kept fewer frames than were sent
    ├── OutputBuildError       an SR/KOS/HL7 object could not be built
    ├── Hl7Error               an inbound HL7 message is wrong (carries ERR details)
    └── DeliveryError          an outbox row could not be delivered
        ├── TransientDeliveryError   retry later
        └── PermanentDeliveryError   stop and wait for an admin
"""

from __future__ import annotations


class RadraftError(Exception):
    """Base of every error radraft raises on purpose."""


class ConfigError(RadraftError):
    """A settings or rules file is invalid; the message names file, line and key."""


class IngestError(RadraftError):
    """An instance could not be stored."""


class FrameError(RadraftError):
    """A study could not be turned into frames; the message names the file."""


class ModelError(RadraftError):
    """The model backend failed or answered output that does not validate."""


class VideoTruncatedError(ModelError):
    """The model server kept fewer video frames than radraft sent."""


class OutputBuildError(RadraftError):
    """An SR, KOS or HL7 object could not be built."""


class Hl7Error(RadraftError):
    """An inbound HL7 message is wrong.

    `segment`, `field` and `code` (HL7 table 0357) feed the ERR segment of the ACK.
    """

    def __init__(
        self, reason: str, *, segment: str = "MSH", position: int = 1, field: int = 0,
        code: str = "207", reject: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segment = segment
        self.position = position
        self.field = field
        self.code = code
        self.reject = reject


class DeliveryError(RadraftError):
    """An outbox row could not be delivered."""


class TransientDeliveryError(DeliveryError):
    """Delivery failed for a reason that may go away: retry with back-off."""


class PermanentDeliveryError(DeliveryError):
    """The peer refused the content: stop retrying, an admin must look."""
