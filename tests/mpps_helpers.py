"""MPPS as a modality sends it, with pynetdicom's SCU (an SCU no one here wrote)."""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep  # type: ignore[attr-defined]


def step_dataset(study_uid: str, *, accession: str = "ACC1", modality: str = "CT",
                 status: str = "IN PROGRESS") -> Dataset:
    """An N-CREATE attribute list (PS3.4 F.7.2.1, the Type 1 attributes a CT sends)."""
    ds = Dataset()
    item = Dataset()
    item.StudyInstanceUID = study_uid
    item.AccessionNumber = accession
    item.RequestedProcedureID = "RP1"
    item.ScheduledProcedureStepID = "SPS1"
    item.ReferencedStudySequence = []
    ds.ScheduledStepAttributesSequence = [item]
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "TEST^MPPS", "P1", "", ""
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CT1"
    ds.PerformedProcedureStepStartDate, ds.PerformedProcedureStepStartTime = "20240102", "1000"
    ds.PerformedProcedureStepStatus = status
    ds.Modality = modality
    ds.PerformedSeriesSequence = []
    return ds


def completed(files: list[Path], status: str = "COMPLETED",
              reason: tuple[str, str] | None = None) -> Dataset:
    """An N-SET modification list listing `files` in the Performed Series Sequence."""
    mods = Dataset()
    mods.PerformedProcedureStepStatus = status
    mods.PerformedProcedureStepEndDate, mods.PerformedProcedureStepEndTime = "20240102", "1010"
    by_series: dict[str, list[Dataset]] = {}
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        ref = Dataset()
        ref.ReferencedSOPClassUID = ds.SOPClassUID
        ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
        by_series.setdefault(str(ds.SeriesInstanceUID), []).append(ref)
    items = []
    for series_uid, refs in by_series.items():
        series = Dataset()
        series.SeriesInstanceUID = series_uid
        series.PerformingPhysicianName, series.ProtocolName, series.OperatorsName = "", "P", ""
        series.SeriesDescription, series.RetrieveAETitle = "", ""
        series.ReferencedImageSequence = refs
        series.ReferencedNonImageCompositeSOPInstanceSequence = []
        items.append(series)
    mods.PerformedSeriesSequence = items
    if reason is not None:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
            reason[0], "DCM", reason[1])
        mods.PerformedProcedureStepDiscontinuationReasonCodeSequence = [code]
    return mods


class MppsScu:
    """One association to the node for N-CREATE / N-SET; statuses as ints."""

    def __init__(self, port: int, *, calling: str = "CT1", called: str = "RADRAFT") -> None:
        ae = AE(ae_title=calling)
        ae.add_requested_context(ModalityPerformedProcedureStep)
        self.assoc = ae.associate("127.0.0.1", port, ae_title=called)
        assert self.assoc.is_established

    def create(self, ds: Dataset, sop_uid: str | None = None) -> tuple[int, str]:
        uid = sop_uid or generate_uid()
        status, _ = self.assoc.send_n_create(ds, ModalityPerformedProcedureStep, uid)
        return int(status.Status), uid

    def set(self, sop_uid: str, mods: Dataset) -> int:
        status, _ = self.assoc.send_n_set(mods, ModalityPerformedProcedureStep, sop_uid)
        return int(status.Status)

    def close(self) -> None:
        self.assoc.release()
