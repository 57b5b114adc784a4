"""DICOM client calls (SCU): C-STORE out, C-FIND and C-GET/C-MOVE for priors.

Every call has timeouts; failures map onto Transient/PermanentDeliveryError.
"""

from radraft.dicom_node.client.peer import Peer
from radraft.dicom_node.client.query import find_studies, get_study, move_study
from radraft.dicom_node.client.store import StoreResult, classify_store_status, store_bytes

__all__ = [
    "Peer",
    "StoreResult",
    "classify_store_status",
    "find_studies",
    "get_study",
    "move_study",
    "store_bytes",
]
