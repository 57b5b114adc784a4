"""DICOM outputs of a draft: TID 2000 Enhanced SR, TID 1500 report, Key Object Selection."""

from radraft.core.types import JobKey
from radraft.reporting.sr.build import SrOutputs, build_outputs, dataset_to_bytes
from radraft.reporting.sr.common import PredecessorRef
from radraft.reporting.sr.document import RequestInfo

__all__ = [
    "JobKey", "PredecessorRef", "RequestInfo", "SrOutputs", "build_outputs", "dataset_to_bytes",
]
