"""The node's non-storage services: MPPS SCP and Storage Commitment Push Model SCP.

Registered by the receiver with two lines (contexts on the AE, handlers on the server);
each receiving process gets its own database engine for them (commits fsynced, unlike the
index's engine: a step or a commitment request answered 0x0000 is on disk).
"""

from __future__ import annotations

from typing import Any

from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    ModalityPerformedProcedureStep,
    StorageCommitmentPushModel,
)

from radraft.core.db import make_engine, make_sessionmaker
from radraft.core.settings import Settings
from radraft.dicom_node.commitment import CommitmentHandler
from radraft.dicom_node.mpps import MppsHandlers


def add_service_contexts(ae: AE) -> None:
    ae.add_supported_context(ModalityPerformedProcedureStep)
    ae.add_supported_context(StorageCommitmentPushModel)


class NodeServices:
    """MPPS and storage-commitment handlers bound to one engine; close() disposes it."""

    def __init__(self, settings: Settings) -> None:
        self.engine = make_engine(settings.database_url, pool_size=4)
        sessions = make_sessionmaker(self.engine)
        self.mpps = MppsHandlers(sessions, uid_root=settings.site.uid_root)
        self.commitment = CommitmentHandler(sessions, retry_s=settings.dicom.commitment_retry_s)

    def handlers(self) -> list[tuple[Any, Any]]:
        return [*self.mpps.handlers(), *self.commitment.handlers()]

    def close(self) -> None:
        self.engine.dispose()
