"""C-FIND for prior studies and C-GET / C-MOVE to fetch them (study root)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import StoragePresentationContexts, build_role, evt
from pynetdicom.events import Event

from radraft.core.errors import TransientDeliveryError
from radraft.dicom_node.client.peer import Peer, associate

# Study Root Query/Retrieve Information Model (PS3.4 C.3); pynetdicom generates these names
# at runtime, so the UIDs are spelled out for the type checker.
StudyRootQueryRetrieveInformationModelFind = "1.2.840.10008.5.1.4.1.2.2.1"
StudyRootQueryRetrieveInformationModelMove = "1.2.840.10008.5.1.4.1.2.2.2"
StudyRootQueryRetrieveInformationModelGet = "1.2.840.10008.5.1.4.1.2.2.3"
_PLAIN = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
_STUDY_KEYS = (
    "StudyInstanceUID", "StudyDate", "StudyDescription", "ModalitiesInStudy", "AccessionNumber",
    "PatientID", "NumberOfStudyRelatedInstances",
)


def find_studies(
    peer: Peer, *, patient_id: str, date_range: str = "", modalities: str = "",
    issuer: str = "",
) -> list[Dataset]:
    """Studies of `patient_id` at `peer` (STUDY level); `date_range` as "YYYYMMDD-YYYYMMDD".

    With `issuer`, Issuer of Patient ID is a key too (and is returned, for the caller to
    check: a PACS may ignore an optional key)."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    for key in _STUDY_KEYS:
        setattr(query, key, "")
    query.PatientID = patient_id
    if issuer:
        query.IssuerOfPatientID = issuer
    query.StudyDate = date_range
    query.ModalitiesInStudy = modalities
    found: list[Dataset] = []
    with associate(peer, [(StudyRootQueryRetrieveInformationModelFind, _PLAIN)]) as assoc:
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            code = int(status.Status) if status and "Status" in status else None
            if code is None:
                raise TransientDeliveryError(f"{peer}: C-FIND got no answer (timeout or abort)")
            if code in (0xFF00, 0xFF01) and identifier is not None:
                found.append(identifier)
            elif code not in (0x0000, 0xFF00, 0xFF01):
                raise TransientDeliveryError(f"{peer}: C-FIND failed, status 0x{code:04X}")
    return found


def _retrieve_query(study_uid: str) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    return query


def get_study(peer: Peer, study_uid: str, out_dir: Path) -> list[Path]:
    """C-GET a whole study into `out_dir` (one file per SOP Instance UID); returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def on_store(event: Event) -> int:
        ds = event.dataset
        ds.file_meta = event.file_meta
        path = out_dir / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
        return 0x0000

    # C-GET needs the storage contexts in the same association, with us in the SCP role.
    storage = [ctx.abstract_syntax for ctx in StoragePresentationContexts[:120]]
    contexts: list[tuple[str, Sequence[str]]] = [
        (StudyRootQueryRetrieveInformationModelGet, _PLAIN),
        *((str(uid), _PLAIN) for uid in storage if uid),
    ]
    roles = [build_role(str(uid), scp_role=True) for uid in storage if uid]
    with associate(
        peer, contexts, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)],
    ) as assoc:
        for status, _identifier in assoc.send_c_get(
            _retrieve_query(study_uid), StudyRootQueryRetrieveInformationModelGet
        ):
            code = int(status.Status) if status and "Status" in status else None
            if code is None:
                raise TransientDeliveryError(f"{peer}: C-GET {study_uid} got no answer")
            if code not in (0x0000, 0xFF00, 0xB000):
                raise TransientDeliveryError(
                    f"{peer}: C-GET {study_uid} failed, status 0x{code:04X}"
                )
    return written


def move_study(peer: Peer, study_uid: str, destination_ae: str) -> None:
    """C-MOVE a whole study to `destination_ae` (radraft's own node, known to the PACS)."""
    with associate(peer, [(StudyRootQueryRetrieveInformationModelMove, _PLAIN)]) as assoc:
        for status, _identifier in assoc.send_c_move(
            _retrieve_query(study_uid), destination_ae, StudyRootQueryRetrieveInformationModelMove
        ):
            code = int(status.Status) if status and "Status" in status else None
            if code is None:
                raise TransientDeliveryError(f"{peer}: C-MOVE {study_uid} got no answer")
            if code not in (0x0000, 0xFF00, 0xB000):
                raise TransientDeliveryError(
                    f"{peer}: C-MOVE {study_uid} failed, status 0x{code:04X}"
                )
