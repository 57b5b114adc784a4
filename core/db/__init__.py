"""radraft's database: typed SQLAlchemy 2 models, engine, migrations."""

from radraft.core.db.base import Base, connection_of, db_now
from radraft.core.db.engine import make_engine, make_sessionmaker
from radraft.core.db.models_audit import AuditEvent, User
from radraft.core.db.models_complete import (
    CommitmentRequest,
    MppsInstance,
    MppsStep,
    PriorPrefetch,
)
from radraft.core.db.models_ehr import (
    Hl7Message,
    LabResult,
    Order,
    Patient,
    PriorReport,
    Visit,
)
from radraft.core.db.models_ingest import Instance, RuleDecision, Series, Study, StudyAnnouncement
from radraft.core.db.models_jobs import Delivery, Draft, Job
from radraft.core.db.models_quality import QualityPair, QualityScore
from radraft.core.db.models_web import DraftImage, WebSession, WorkerHeartbeat

__all__ = [
    "AuditEvent",
    "Base",
    "CommitmentRequest",
    "Delivery",
    "Draft",
    "DraftImage",
    "Hl7Message",
    "Instance",
    "Job",
    "LabResult",
    "MppsInstance",
    "MppsStep",
    "Order",
    "Patient",
    "PriorPrefetch",
    "PriorReport",
    "QualityPair",
    "QualityScore",
    "RuleDecision",
    "Series",
    "Study",
    "StudyAnnouncement",
    "User",
    "Visit",
    "WebSession",
    "WorkerHeartbeat",
    "connection_of",
    "db_now",
    "make_engine",
    "make_sessionmaker",
]
