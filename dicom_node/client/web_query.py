"""QIDO-RS search and WADO-RS retrieval of prior studies from a DICOMweb PACS (PS3.18 10.6,
10.4), through dicomweb-client: the DICOMweb twin of `query.find_studies` / `get_study`.

Searches return the same STUDY-level identifiers as C-FIND (pydicom Datasets), so the
relevance rules downstream are one code path for both kinds of PACS. Retrieval streams the
study instance by instance (`iter_study`) into files, never the whole study in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset

from radraft.core.errors import TransientDeliveryError
from radraft.dicom_node.storage import safe_name

_STUDY_FIELDS = ("StudyInstanceUID", "StudyDate", "StudyDescription", "ModalitiesInStudy",
                 "AccessionNumber", "PatientID", "NumberOfStudyRelatedInstances")


@dataclass(frozen=True, slots=True)
class WebPacs:
    """A DICOMweb service root (`https://pacs/dicom-web`) with its bearer token."""

    url: str
    token: str = ""
    timeout_s: float = 60.0

    def __str__(self) -> str:
        return self.url

    def client(self) -> DICOMwebClient:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        client = DICOMwebClient(self.url, headers=headers, timeout=self.timeout_s)
        # No retries inside the client (5 attempts, ~30 s of back-off): a draft gives the PACS
        # at most pacs.timeout_s, and radraft's own back-off retries what failed.
        client.set_http_retry_params(retry=False)
        return client


def find_studies_web(pacs: WebPacs, *, patient_id: str, date_range: str = "") -> list[Dataset]:
    """Studies of `patient_id` (QIDO-RS /studies); `date_range` as "YYYYMMDD-YYYYMMDD"."""
    filters = {"PatientID": patient_id}
    if date_range:
        filters["StudyDate"] = date_range
    try:
        found = pacs.client().search_for_studies(
            search_filters=filters, fields=list(_STUDY_FIELDS), get_remaining=True)
    except (requests.RequestException, ValueError) as exc:
        raise TransientDeliveryError(f"{pacs}: QIDO-RS failed: {exc}") from exc
    studies = []
    for item in found:
        ds = Dataset.from_json(item)
        # A PACS may ignore a filter it does not support: keep only this patient's studies.
        if str(ds.get("PatientID", patient_id)) == patient_id:
            studies.append(ds)
    return studies


def get_study_web(pacs: WebPacs, study_uid: str, out_dir: Path) -> list[Path]:
    """WADO-RS the whole study into `out_dir` (one file per instance); returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for ds in pacs.client().iter_study(study_uid):
            path = out_dir / f"{safe_name(str(ds.SOPInstanceUID))}.dcm"
            temp = path.with_suffix(".part")
            ds.save_as(temp, enforce_file_format=True)
            temp.replace(path)
            written.append(path)
    except (requests.RequestException, ValueError, AttributeError) as exc:
        raise TransientDeliveryError(f"{pacs}: WADO-RS of {study_uid} failed: {exc}") from exc
    return written
