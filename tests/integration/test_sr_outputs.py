"""SR (TID 2000), TID 1500 report and KOS built from the real samples.

Every object passes dciodvfy with no Error line, the content tree is asserted (dciodvfy
does not check templates), highdicom reads each back, and Orthanc accepts all three by
C-STORE (dcmtk storescu) under the right patient and study.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
import pytest
from helpers.data import DICOM_DATA
from orthanc import OrthancServer
from pydicom.dataset import Dataset

from radraft.core.errors import OutputBuildError
from radraft.core.settings import Settings
from radraft.ehr.outbound import OrderInfo
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameRef, FrameSequence
from radraft.reporting.sr import PredecessorRef, SrOutputs, build_outputs

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
SETTINGS = Settings(site={"timezone": "Europe/Paris", "uid_root": "1.2.826.0.1.3680043.10.999"})
REJECTION_TITLES = {"113001", "113037", "113038", "113039"}


def _headers(paths: list[Path]) -> list[Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(paths)]


@pytest.fixture(scope="module")
def ct() -> list[Dataset]:
    """Current study: the contrast CT sample (two CT series, its KO left out)."""
    found = _headers(list((DICOM_DATA / "study_ct_wb_contrast_kos").glob("*.dcm")))
    return [ds for ds in found if ds.Modality == "CT"]


@pytest.fixture(scope="module")
def mr_prior() -> list[Dataset]:
    """A prior from another study (the MR wrist series)."""
    return _headers(list((DICOM_DATA / "series_mr_wrist_mesa").glob("*.dcm")))[:4]


@pytest.fixture(scope="module")
def enhanced_ct() -> Dataset:
    return pydicom.dcmread(DICOM_DATA / "modalities" / "eCT_Supplemental.dcm",
                           stop_before_pixels=True)


def _ref(ds: Dataset, *, prior: bool = False, frame: int | None = None) -> FrameRef:
    return FrameRef(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID),
                    str(ds.SOPClassUID), frame, prior, ((str(ds.SOPInstanceUID), frame),))


def _seq(refs: list[FrameRef]) -> FrameSequence:
    return FrameSequence(np.zeros((len(refs), 2, 2, 3), np.uint8), [], refs)


def _draft(findings: list[dict[str, Any]], **changes: Any) -> DraftReport:
    data: dict[str, Any] = dict(
        exam="CT whole body with contrast", technique="Portal venous phase, 2.5 mm",
        comparison="MR wrist 2015", clinical_history="Abdominal pain.",
        findings=findings,
        impression=[{"rank": 1, "text": "Hypodense liver lesion."}],
        recommendations=["Follow-up MRI of the liver."],
        triage={"level": "routine", "reasons": [], "critical_findings": []},
        limitations="Motion artefacts.",
    )
    data.update(changes)
    return DraftReport.model_validate(data)


LIVER = {"system": "liver", "text": "Hypodense lesion in segment VII.", "severity": "significant",
         "finding_type": "SCT:52988006", "finding_site": "SCT:10200004"}


def _build(report: DraftReport, seq: FrameSequence, sources: list[Dataset], *,
           version: str = "v1", predecessor: PredecessorRef | None = None,
           order: OrderInfo | None = None) -> SrOutputs:
    study = seq.refs[0].study_uid
    return build_outputs(report, seq, sources, settings=SETTINGS,
                         job_key=(study, version, "ct-generic"), model_name="radraft-tiny",
                         model_version="0.1", predecessor=predecessor, order=order, now=NOW)


def _write_all(outputs: SrOutputs, folder: Path) -> dict[str, Path]:
    paths = {}
    for name, data in outputs.to_bytes().items():
        paths[name] = folder / f"{name}.dcm"
        paths[name].write_bytes(data)
    return paths


def _dciodvfy_errors(path: Path) -> list[str]:
    result = subprocess.run(["/usr/bin/dciodvfy", str(path)], capture_output=True, text=True,
                            timeout=60, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if "Error" in line]


def _walk(items: Any) -> Iterator[Dataset]:
    for item in items:
        yield item
        if "ContentSequence" in item:
            yield from _walk(item.ContentSequence)


def _name(item: Dataset) -> tuple[str, str]:
    code = item.ConceptNameCodeSequence[0]
    return str(code.CodeValue), str(code.CodingSchemeDesignator)


def _evidence_uids(ds: Dataset, keyword: str) -> set[str]:
    return {
        str(sop.ReferencedSOPInstanceUID)
        for study in ds.get(keyword, [])
        for series in study.ReferencedSeriesSequence
        for sop in series.ReferencedSOPSequence
    }


def _image_refs(ds: Dataset) -> list[Dataset]:
    return [item.ReferencedSOPSequence[0] for item in _walk(ds.ContentSequence)
            if item.ValueType == "IMAGE"]


@pytest.fixture(scope="module")
def basic(ct: list[Dataset], mr_prior: list[Dataset], tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[SrOutputs, dict[str, Path], list[Dataset], list[Dataset]]:
    """A finding citing two current CT frames and one prior MR frame, with an order."""
    seq = _seq([_ref(ds) for ds in ct] + [_ref(ds, prior=True) for ds in mr_prior])
    report = _draft([LIVER | {"frames": [3, 4, len(ct) + 1]}])
    order = OrderInfo(accession=str(ct[0].AccessionNumber), placer_order_number="PL-77",
                      filler_order_number="FI-88", requested_procedure_id="RP1",
                      procedure_code="CTWB", procedure_text="CT whole body",
                      patient_id=str(ct[0].PatientID), patient_id_issuer="HOSP-A")
    outputs = _build(report, seq, ct, order=order)
    return outputs, _write_all(outputs, tmp_path_factory.mktemp("sr")), ct, mr_prior


def test_every_object_passes_dciodvfy(basic: tuple[SrOutputs, dict[str, Path], Any, Any]) -> None:
    _outputs, paths, _ct, _mr = basic
    assert set(paths) == {"sr", "tid1500", "kos"}
    for name, path in paths.items():
        assert _dciodvfy_errors(path) == [], name


def test_tid2000_tree(basic: tuple[SrOutputs, dict[str, Path], list[Dataset], list[Dataset]]
                      ) -> None:
    _outputs, paths, ct, mr = basic
    sr = pydicom.dcmread(paths["sr"])
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.22"
    assert (sr.CompletionFlag, sr.VerificationFlag, sr.PreliminaryFlag) == (
        "PARTIAL", "UNVERIFIED", "PRELIMINARY")
    assert sr.Modality == "SR" and sr.StudyInstanceUID == ct[0].StudyInstanceUID
    assert sr.SeriesInstanceUID not in {ds.SeriesInstanceUID for ds in ct}
    assert sr.ConceptNameCodeSequence[0].CodeValue == "18748-4"
    template = sr.ContentTemplateSequence[0]
    assert (template.TemplateIdentifier, template.MappingResource) == ("2000", "DCMR")
    assert (sr.PatientID, sr.IssuerOfPatientID) == (ct[0].PatientID, "HOSP-A")
    assert sr.TimezoneOffsetFromUTC == "+0100"
    assert sr.ContentTime.startswith("1030")
    top = [_name(item) for item in sr.ContentSequence]
    assert ("121049", "DCM") in top  # language
    assert [h for h in top if h[0] in {"121060", "121064", "121068", "121070", "121072",
                                       "121074"}] == [
        ("121064", "DCM"), ("121060", "DCM"), ("121068", "DCM"), ("121070", "DCM"),
        ("121072", "DCM"), ("121074", "DCM")]
    observer = {_name(i)[0]: i for i in sr.ContentSequence
                if i.RelationshipType == "HAS OBS CONTEXT"}
    assert observer["121005"].ConceptCodeSequence[0].CodeValue == "121007"  # Device
    assert observer["121012"].UID.startswith(SETTINGS.site.uid_root)
    assert observer["121013"].TextValue == "radraft-tiny"
    texts = [i.TextValue for i in _walk(sr.ContentSequence) if i.ValueType == "TEXT"]
    assert any(t.startswith("liver: Hypodense lesion in segment VII. [significant] (")
               for t in texts)
    sections = [i for i in sr.ContentSequence if i.ValueType == "CONTAINER"]
    assert all(section.ContinuityOfContent == "SEPARATE" for section in sections)
    assert sections[0].ContentSequence[0].TextValue == (
        "AI-generated draft, not reviewed by a radiologist.")
    # Evidence: every current instance; the cited prior under Pertinent Other; never both.
    current = _evidence_uids(sr, "CurrentRequestedProcedureEvidenceSequence")
    other = _evidence_uids(sr, "PertinentOtherEvidenceSequence")
    assert current == {str(ds.SOPInstanceUID) for ds in ct}
    assert other == {str(mr[1].SOPInstanceUID)}
    assert not current & other
    cited = [str(r.ReferencedSOPInstanceUID) for r in _image_refs(sr)]
    assert cited == [ct[3].SOPInstanceUID, ct[4].SOPInstanceUID, mr[1].SOPInstanceUID]
    request = sr.ReferencedRequestSequence[0]
    assert (request.AccessionNumber, request.PlacerOrderNumberImagingServiceRequest,
            request.FillerOrderNumberImagingServiceRequest) == (
        ct[0].AccessionNumber, "PL-77", "FI-88")
    assert "PredecessorDocumentsSequence" not in sr


def test_highdicom_reads_back_the_findings(
        basic: tuple[SrOutputs, dict[str, Path], list[Dataset], list[Dataset]]) -> None:
    _outputs, paths, ct, _mr = basic
    sr = hd.sr.srread(paths["sr"])
    assert isinstance(sr, hd.sr.EnhancedSR)
    findings = [i for i in _walk(sr.ContentSequence) if i.ValueType == "TEXT"
                and _name(i) == ("121071", "DCM")]
    assert [f.TextValue.partition(" (")[0] for f in findings] == [
        "liver: Hypodense lesion in segment VII. [significant]"]
    tid1500 = hd.sr.srread(paths["tid1500"])
    assert isinstance(tid1500, hd.sr.Comprehensive3DSR)
    report = hd.sr.MeasurementReport.from_sequence([tid1500])
    found = report.get_image_measurement_groups()
    assert len(found) == 1
    group = found[0]
    assert group.finding_type is not None and group.finding_type.value == "52988006"
    assert [s.value.value for s in group.finding_sites] == ["10200004"]
    assert group.tracking_identifier == "Finding 1"
    evaluations = group.get_qualitative_evaluations()
    assert [e.value.value for e in evaluations] == ["6736007"]  # significant -> Moderate
    assert tid1500.StudyInstanceUID == ct[0].StudyInstanceUID


def test_kos_lists_the_cited_images_of_interest(
        basic: tuple[SrOutputs, dict[str, Path], list[Dataset], list[Dataset]]) -> None:
    _outputs, paths, ct, mr = basic
    kos = pydicom.dcmread(paths["kos"])
    assert kos.Modality == "KO"
    title = kos.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator) == ("113000", "DCM")
    assert title.CodeValue not in REJECTION_TITLES
    cited = {str(r.ReferencedSOPInstanceUID) for r in _image_refs(kos)}
    assert cited == {ct[3].SOPInstanceUID, ct[4].SOPInstanceUID, mr[1].SOPInstanceUID}
    assert _evidence_uids(kos, "CurrentRequestedProcedureEvidenceSequence") == cited
    sr = pydicom.dcmread(paths["sr"])
    series = {sr.SeriesInstanceUID, kos.SeriesInstanceUID,
              pydicom.dcmread(paths["tid1500"]).SeriesInstanceUID}
    assert len(series) == 3
    document = hd.ko.KeyObjectSelectionDocument.from_dataset(kos)
    assert {str(r.ReferencedSOPInstanceUID) for r in _image_refs(document)} == cited


def test_multiframe_citation_carries_frame_numbers(enhanced_ct: Dataset, tmp_path: Path) -> None:
    seq = _seq([_ref(enhanced_ct, frame=1), _ref(enhanced_ct, frame=2)])
    outputs = _build(_draft([LIVER | {"frames": [1]}], comparison=""), seq, [enhanced_ct])
    paths = _write_all(outputs, tmp_path)
    for path in paths.values():
        assert _dciodvfy_errors(path) == [], path
    for name in ("sr", "tid1500", "kos"):
        refs = [r for r in _image_refs(pydicom.dcmread(paths[name]))
                if r.ReferencedSOPInstanceUID == enhanced_ct.SOPInstanceUID]
        assert refs, name
        assert all(list(np.atleast_1d(r.ReferencedFrameNumber)) == [2] for r in refs), name
    headings = [_name(i)[0] for i in pydicom.dcmread(paths["sr"]).ContentSequence]
    assert "121068" not in headings  # empty comparison: no Previous Findings section


def test_no_findings_draft(ct: list[Dataset], tmp_path: Path) -> None:
    outputs = _build(_draft([]), _seq([_ref(ds) for ds in ct]), ct)
    assert outputs.kos is None and outputs.tid1500 is None
    paths = _write_all(outputs, tmp_path)
    assert set(paths) == {"sr"}
    for path in paths.values():
        assert _dciodvfy_errors(path) == [], path
    sr = pydicom.dcmread(paths["sr"])
    assert _image_refs(sr) == []
    texts = [i.TextValue for i in _walk(sr.ContentSequence) if i.ValueType == "TEXT"]
    assert "No findings reported by the model." in texts


def test_non_ascii_text_uses_utf8(ct: list[Dataset], tmp_path: Path) -> None:
    text = "Läsion im Segment VII – Ø 12 mm | ^ & ~ \\ 肝"
    outputs = _build(_draft([LIVER | {"text": text, "frames": [0]}]),
                     _seq([_ref(ds) for ds in ct]), ct)
    paths = _write_all(outputs, tmp_path)
    for path in paths.values():
        assert _dciodvfy_errors(path) == [], path
        assert pydicom.dcmread(path).SpecificCharacterSet == "ISO_IR 192"
    sr = pydicom.dcmread(paths["sr"])
    texts = [i.TextValue for i in _walk(sr.ContentSequence) if i.ValueType == "TEXT"]
    assert f"liver: {text} [significant] (series {ct[0].SeriesNumber}, image " \
        f"{ct[0].InstanceNumber})" in texts
    assert sr.PatientName == ct[0].PatientName


def test_redraft_names_its_predecessor_and_uids_are_deterministic(
        ct: list[Dataset], tmp_path: Path) -> None:
    seq = _seq([_ref(ds) for ds in ct])
    report = _draft([LIVER | {"frames": [2]}])
    first = _build(report, seq, ct)
    again = _build(report, seq, ct)
    assert again.sr.SOPInstanceUID == first.sr.SOPInstanceUID
    assert again.kos is not None and first.kos is not None
    assert again.kos.SOPInstanceUID == first.kos.SOPInstanceUID
    assert again.to_bytes() == first.to_bytes()  # same inputs, same bytes
    predecessor = PredecessorRef(str(first.sr.SOPInstanceUID), str(first.sr.SeriesInstanceUID),
                                 str(first.sr.StudyInstanceUID))
    redraft = _build(report, seq, ct, version="v2", predecessor=predecessor)
    assert redraft.sr.SOPInstanceUID != first.sr.SOPInstanceUID
    assert redraft.sr.SeriesInstanceUID == first.sr.SeriesInstanceUID
    path = _write_all(redraft, tmp_path)["sr"]
    assert _dciodvfy_errors(path) == []
    ds = pydicom.dcmread(path)
    pre = ds.PredecessorDocumentsSequence[0]
    assert pre.StudyInstanceUID == first.sr.StudyInstanceUID
    sop = pre.ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert sop.ReferencedSOPInstanceUID == first.sr.SOPInstanceUID


def test_citation_outside_the_sequence_is_refused(ct: list[Dataset]) -> None:
    with pytest.raises(OutputBuildError, match="frame 99"):
        _build(_draft([LIVER | {"frames": [99]}]), _seq([_ref(ds) for ds in ct[:3]]), ct[:3])


def test_orthanc_files_all_three_under_the_patient_and_study(
        basic: tuple[SrOutputs, dict[str, Path], list[Dataset], list[Dataset]],
        tmp_path: Path) -> None:
    outputs, paths, ct, _mr = basic
    with OrthancServer(tmp_path / "orthanc") as pacs:
        result = subprocess.run(
            ["/usr/bin/storescu", "--required", "-aec", pacs.aet, "127.0.0.1", str(pacs.dicom_port),
             *(str(p) for p in paths.values())],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        [study_id] = pacs.find_studies()
        study = pacs.get(f"/studies/{study_id}")
        assert study["MainDicomTags"]["StudyInstanceUID"] == ct[0].StudyInstanceUID
        assert study["PatientMainDicomTags"]["PatientID"] == ct[0].PatientID
        stored = {
            pacs.get(f"/instances/{i['ID']}/simplified-tags")["SOPInstanceUID"]
            for i in pacs.get(f"/studies/{study_id}/instances")
        }
        assert stored == {str(ds.SOPInstanceUID) for ds in outputs.datasets().values()}
        modalities = sorted(pacs.get(f"/series/{s}")["MainDicomTags"]["Modality"]
                            for s in study["Series"])
        assert modalities == ["KO", "SR", "SR"]


@pytest.mark.parametrize("sample", [
    "transfer_syntaxes/ExplVR_BigEnd.dcm",  # ACR-NEMA dates/times, no Patient ID
    "study_mr_mra_tiny",
    "modalities/dx_image.dcm",
    "study_mr_siemens_localizer_fmap",
])
def test_other_samples_build_clean_outputs(sample: str, tmp_path: Path) -> None:
    where = DICOM_DATA / sample
    files = [where] if where.is_file() else [p for p in where.rglob("*") if p.is_file()]
    sources = [ds for ds in _headers(files) if "Rows" in ds]
    seq = _seq([_ref(ds) for ds in sources])
    outputs = _build(_draft([LIVER | {"frames": [0, len(sources) - 1]}]), seq, sources)
    paths = _write_all(outputs, tmp_path)
    assert set(paths) == {"sr", "tid1500", "kos"}
    for path in paths.values():
        assert _dciodvfy_errors(path) == [], path
        ds = pydicom.dcmread(path)
        assert ds.StudyInstanceUID == sources[0].StudyInstanceUID
        assert ds.PatientID == sources[0].get("PatientID", "")


def test_own_outputs_are_no_evidence_and_unnamed_versions_are_valid(
        ct: list[Dataset], tmp_path: Path) -> None:
    seq = _seq([_ref(ds) for ds in ct])
    report = _draft([LIVER | {"frames": [1]}])
    earlier = _build(report, seq, ct)
    outputs = build_outputs(report, seq, [earlier.sr, *ct], settings=SETTINGS,
                            job_key=(str(ct[0].StudyInstanceUID), "v2", "ct-generic"),
                            model_name="radraft-tiny", model_version="", predecessor=None,
                            order=None, now=NOW)
    paths = _write_all(outputs, tmp_path)
    for path in paths.values():
        assert _dciodvfy_errors(path) == [], path
    evidence = _evidence_uids(outputs.sr, "CurrentRequestedProcedureEvidenceSequence")
    assert evidence == {str(ds.SOPInstanceUID) for ds in ct}
    with pytest.raises(OutputBuildError, match="no source datasets"):
        build_outputs(report, seq, [earlier.sr], settings=SETTINGS, job_key=("1", "v", "p"),
                      model_name="m", model_version="1", predecessor=None, order=None)


def test_notes_are_the_statements_after_the_notice(ct: list[Dataset], tmp_path: Path) -> None:
    seq = _seq([_ref(ds) for ds in ct])
    outputs = build_outputs(_draft([LIVER | {"frames": [0]}]), seq, ct, settings=SETTINGS,
                            job_key=(str(ct[0].StudyInstanceUID), "v1", "ct-generic"),
                            model_name="m", model_version="1", predecessor=None, order=None,
                            now=NOW, notes=["AI triage unsupported — radiologist review"])
    paths = _write_all(outputs, tmp_path)
    assert _dciodvfy_errors(paths["sr"]) == []
    sr = pydicom.dcmread(paths["sr"])
    assert sr.SpecificCharacterSet == "ISO_IR 192"  # the note's dash is not ASCII
    first = next(i for i in sr.ContentSequence if i.ValueType == "CONTAINER")
    assert [i.TextValue for i in first.ContentSequence[:2]] == [
        "AI-generated draft, not reviewed by a radiologist.",
        "AI triage unsupported — radiologist review"]


def test_header_text_in_another_charset_round_trips(ct: list[Dataset], tmp_path: Path) -> None:
    import copy

    latin = [copy.deepcopy(ds) for ds in ct]
    for ds in latin:
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.StudyDescription = "THORAX ÜBERSICHT"
        ds.PatientName = "Gómez^José"
        if "ProcedureCodeSequence" in ds:
            del ds.ProcedureCodeSequence
        if "RequestedProcedureDescription" in ds:
            del ds.RequestedProcedureDescription
    outputs = _build(_draft([LIVER | {"frames": [0]}]), _seq([_ref(ds) for ds in latin]), latin)
    paths = _write_all(outputs, tmp_path)
    for path in paths.values():
        assert _dciodvfy_errors(path) == [], path
    sr = pydicom.dcmread(paths["sr"])
    assert sr.SpecificCharacterSet == "ISO_IR 192"  # a stated header text is not ASCII
    texts = [i.TextValue for i in _walk(sr.ContentSequence) if i.ValueType == "TEXT"]
    assert any(t.startswith("THORAX ÜBERSICHT") for t in texts)
    assert str(sr.PatientName) == "Gómez^José" and sr.StudyDescription == "THORAX ÜBERSICHT"
