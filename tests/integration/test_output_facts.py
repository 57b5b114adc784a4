"""What the outputs state, read back and compared with the SOURCE headers (issue 19).

Every study in tests/data/dicom, generated multi-phase CT and multi-sequence MR, an
enhanced multi-frame CT, and a copy of a real study whose header carries a non-ASCII
five-part name and an empty Procedure Code Sequence item, drafted by `draft_folder` with
the real prompt builder and a scripted model (the model is not under test; what radraft
states around it is). For each: dciodvfy has no Error line on every DICOM output; the
procedure, the exam's time, the patient name's components, OBR-24, the series/image
references and the impressions' numbering are read back from the SR, dsr2html, the ORU
(hl7apy STRICT and python-hl7), draft.txt and draft.html, and compared with the headers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone, tzinfo
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hl7
import pydicom
import pytest
from facts_helpers import FINDING, MODEL_EXAM, MODEL_TECHNIQUE, scripted
from helpers.data import DICOM_DATA
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from radraft.core.settings import Settings
from radraft.reporting.phantom import write_phantom_study
from radraft.worker.draft_local import draft_folder

ZONE = "Europe/Paris"
NOTICE = "AI-generated draft, not reviewed by a radiologist."
# HL7 table 0074, written out here independently of radraft's map.
SERVICE = {"CT": "CT", "MR": "NMR", "PT": "NMS", "NM": "NMS", "US": "RUS", "DX": "RAD",
           "CR": "RAD"}


def _copy_with(source: Path, out: Path, **attrs: Any) -> Path:
    """A copy of a real study whose headers get `attrs` (keyword -> value)."""
    out.mkdir(parents=True)
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path)
        except pydicom.errors.InvalidDicomError:
            continue
        for keyword, value in attrs.items():
            setattr(ds, keyword, value)
        ds.save_as(out / f"{path.stem}.dcm")
    return out


def _empty_code_item() -> DicomSequence:
    return DicomSequence([Dataset()])


def _study(name: str, tmp: Path) -> Path:
    if name == "phantom-ct":
        return write_phantom_study(tmp, modality="CT", slices=6, size=48,
                                   include_localizer=True).paths[0].parent.parent
    if name == "phantom-mr":
        return write_phantom_study(tmp, modality="MR", slices=6, size=48).paths[0].parent.parent
    if name.startswith("file:"):  # a one-instance study: a single sample file
        (tmp / "one").mkdir(parents=True)
        shutil.copy(DICOM_DATA / name.removeprefix("file:"), tmp / "one")
        return tmp / "one"
    if name == "mr-brain-multi-name":
        # Real MR brain (MRA) headers with the defects seen in the field: an empty Procedure
        # Code Sequence item, a five-part non-ASCII name, UTF-8.
        return _copy_with(DICOM_DATA / "study_mr_mra_tiny", tmp / "mra",
                          SpecificCharacterSet="ISO_IR 192",
                          PatientName="Müller-Łukasz^Zoë^Ana^Dr.^Jr.",
                          ProcedureCodeSequence=_empty_code_item(), AccessionNumber="ACC-Ü1")
    return DICOM_DATA / name


STUDIES = ["study_ct_scout_axial_tiny", "study_ct_wb_contrast_kos", "study_mr_mra_tiny",
           "study_mr_siemens_localizer_fmap", "series_mr_wrist_mesa", "phantom-ct",
           "phantom-mr", "file:modalities/eCT_Supplemental.dcm", "file:modalities/dx_image.dcm",
           "file:transfer_syntaxes/CT_small.dcm", "file:transfer_syntaxes/MR_small.dcm",
           "mr-brain-multi-name"]


def _headers(folder: Path) -> dict[str, Dataset]:
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except pydicom.errors.InvalidDicomError:
            continue
        found[str(ds.SOPInstanceUID)] = ds
    return found


def _expected_procedure(images: list[Dataset]) -> str:
    for ds in images:
        for item in ds.get("ProcedureCodeSequence", []) or []:
            if item.get("CodeValue") and item.get("CodeMeaning"):
                return str(item.CodeMeaning)
    for keyword in ("RequestedProcedureDescription", "StudyDescription"):
        for ds in images:
            if str(ds.get(keyword, "") or "").strip():
                return str(ds.get(keyword)).strip()
    return f"{images[0].Modality} study"


def _dciodvfy_errors(path: Path) -> list[str]:
    result = subprocess.run(["/usr/bin/dciodvfy", str(path)], capture_output=True, text=True,
                            timeout=120, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines()
            if line.startswith("Error")]


def _walk(items: Any) -> Any:
    for item in items:
        yield item
        if "ContentSequence" in item:
            yield from _walk(item.ContentSequence)


def _section(sr: Dataset, meaning: str) -> Dataset:
    return next(i for i in sr.ContentSequence if i.ValueType == "CONTAINER"
                and i.ConceptNameCodeSequence[0].CodeMeaning == meaning)


def _place(ds: Dataset, frames: list[int]) -> str:
    text = f"series {ds.SeriesNumber}, image {ds.InstanceNumber}"
    return text + (f", frame {frames[0]}" if frames else "")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


@pytest.mark.parametrize("name", STUDIES)
def test_outputs_state_the_headers_facts(name: str, tmp_path: Path) -> None:
    study = _study(name, tmp_path / "in")
    settings = Settings(data_dir=tmp_path / "data", site={"timezone": ZONE})
    product, files = draft_folder(settings, study, [], "ct-generic", tmp_path / "out",
                                  backend=scripted())
    headers = _headers(study)
    images = [ds for ds in headers.values() if "Rows" in ds]
    first = images[0]

    # dciodvfy: no Error line in any DICOM output.
    for kind in ("sr", "tid1500", "kos"):
        assert kind in files, kind
        assert _dciodvfy_errors(files[kind]) == [], (kind, name)
    sr = pydicom.dcmread(files["sr"])
    kos = pydicom.dcmread(files["kos"])

    # Procedure: the header's, never the model's exam/technique text.
    procedure = _expected_procedure(images)
    current = _section(sr, "Current Procedure Descriptions")
    texts = [i.TextValue for i in current.ContentSequence if i.ValueType == "TEXT"]
    assert texts[0] == NOTICE  # the first statement a reader meets
    assert texts[1].startswith(procedure)
    every_text = [i.TextValue for i in _walk(sr.ContentSequence) if i.ValueType == "TEXT"]
    for kind in ("sr", "text", "html", "oru"):
        if kind in files:
            assert MODEL_EXAM not in files[kind].read_bytes().decode("utf-8", "replace")
            assert MODEL_TECHNIQUE not in files[kind].read_bytes().decode("utf-8", "replace")
    if "ReferencedRequestSequence" in sr:
        assert sr.ReferencedRequestSequence[0].RequestedProcedureDescription == procedure[:64]

    # Series/image references: the cited instance's own numbers from its header.
    findings = _section(sr, "Findings")
    [finding] = [i for i in findings.ContentSequence if i.ValueType == "TEXT"
                 and i.ConceptNameCodeSequence[0].CodeValue == "121071"]
    cited = [(str(ref.ReferencedSOPInstanceUID), list(ref.get("ReferencedFrameNumber", [])))
             for item in finding.ContentSequence
             for ref in item.ReferencedSOPSequence]
    assert cited
    places = [_place(headers[uid], frames) for uid, frames in cited]
    for place in places:
        assert place in finding.TextValue
    assert "frame 0" not in finding.TextValue
    txt = files["text"].read_text("utf-8")
    html = files["html"].read_text("utf-8")
    for place in places:
        assert place in txt and place in html
    assert FINDING in txt and FINDING in html and f"liver: {FINDING}" in finding.TextValue

    # Impressions numbered 1..n by position, not by the model's ranks (6, 10).
    impressions = [i.TextValue for i in _section(sr, "Impressions").ContentSequence
                   if i.ConceptNameCodeSequence[0].CodeValue == "121073"]
    assert impressions == ["1. Erste Zeile", "2. Zweite Zeile"]
    assert "1. Erste Zeile\n2. Zweite Zeile" in txt
    assert re.search(r"<ol><li>Erste Zeile</li><li>Zweite Zeile</li></ol>", html)

    # Model version: a revision, never a path; in Software Versions and the observer.
    assert list(sr.SoftwareVersions)[1] == "rev 0123abcd"
    assert "scripted-model rev 0123abcd" in every_text  # Device Observer Model Name

    # KOS: the notice as written, the study described, evidence = images used only.
    assert "aI-generated" not in str(kos.ContentSequence[0].get("TextValue", ""))
    kos_texts = [i.TextValue for i in _walk(kos.ContentSequence) if i.ValueType == "TEXT"]
    assert any("AI-generated draft" in t for t in kos_texts)
    if str(first.get("StudyDescription", "")).strip():
        assert kos.StudyDescription == first.StudyDescription
        assert sr.StudyDescription == first.StudyDescription
    image_uids = {uid for uid, ds in headers.items() if "Rows" in ds}
    for output in (sr, kos):
        evidence = {str(ref.ReferencedSOPInstanceUID)
                    for study_item in output.CurrentRequestedProcedureEvidenceSequence
                    for series in study_item.ReferencedSeriesSequence
                    for ref in series.ReferencedSOPSequence}
        assert evidence <= image_uids  # a source KOS or dose SR is not evidence

    # Patient: every PN component, non-ASCII included, in the SR and the documents.
    assert str(sr.PatientName) == str(first.PatientName) == str(kos.PatientName)
    family = str(first.PatientName).split("^")[0]
    assert family in txt and family in html

    # HL7: only with an accession; STRICT and python-hl7 read-back of the facts.
    accession = str(first.get("AccessionNumber", "") or "")
    if not accession:
        assert "oru" not in files
        return
    raw = files["oru"].read_bytes().decode("utf-8")
    strict = parse_message(raw.rstrip("\r"), validation_level=VALIDATION_LEVEL.STRICT)
    assert strict.validate() is True
    msg = hl7.parse(raw)
    obr = msg.segment("OBR")
    msh = msg.segment("MSH")
    assert str(msh[18]) == "UNICODE UTF-8"
    # Observation time: the exam's (Study Date/Time in the site's zone).
    date = str(first.get("StudyDate", "") or "")
    time = str(first.get("StudyTime", "") or "").split(".")[0]
    obr7 = str(obr[7])
    if len(date) == 8 and len(time) >= 4:
        offset = str(first.get("TimezoneOffsetFromUTC", "") or "")
        zone: tzinfo = ZoneInfo(ZONE) if not offset else timezone(
            (-1 if offset[0] == "-" else 1) * timedelta(hours=int(offset[1:3]),
                                                        minutes=int(offset[3:5])))
        local = datetime.strptime(date + time.ljust(6, "0")[:6], "%Y%m%d%H%M%S").replace(
            tzinfo=zone).astimezone(ZoneInfo(ZONE))
        assert obr7 == local.strftime("%Y%m%d%H%M%S%z")
    elif date:
        assert obr7.startswith(date)
    assert {str(obx[14]) for obx in msg.segments("OBX")} == {obr7}
    drafted = str(msh[7])
    assert str(obr[22]) == drafted and drafted != obr7
    assert drafted.startswith(datetime.now(ZoneInfo(ZONE)).strftime("%Y"))
    # PID-5: XPN family^given^middle^suffix^prefix from PN family^given^middle^prefix^suffix.
    pn = (str(first.PatientName).split("=")[0].split("^") + [""] * 5)[:5]
    xpn = [pn[0], pn[1], pn[2], pn[4], pn[3]]
    pid5 = msg.segment("PID")[5][0]
    got = [str(pid5[i]) if i < len(pid5) else "" for i in range(5)] \
        if not isinstance(pid5, str) else [pid5, "", "", "", ""]
    assert [msg.unescape(g) for g in got] == xpn
    assert str(obr[24]) == SERVICE[str(first.Modality)]
    # OBR-4: the header's procedure as text, with no made-up code.
    assert [msg.unescape(part) for part in str(obr[4]).split("^")] == ["", procedure]
    # OBX 55111-9: the procedure, then the series read.
    rows = [(str(o[3][0][0]), msg.unescape(str(o[5]))) for o in msg.segments("OBX")]
    assert rows[0] == ("55111-9", procedure)
    assert [t for c, t in rows if c == "19005-8"] == ["1. Erste Zeile", "2. Zweite Zeile"]
    finding_rows = [t for c, t in rows if c == "59776-5" and t.startswith("liver")]
    assert finding_rows and all(p in " ".join(finding_rows) for p in places)
    assert FINDING in " ".join(finding_rows)  # non-ASCII text intact in UTF-8 HL7

    # dsr2html: section headings and the notice before the findings.
    rendered = subprocess.run(["dsr2html", str(files["sr"])], capture_output=True,
                              timeout=60, check=True).stdout.decode("utf-8", "replace")
    parser = _Text()
    parser.feed(rendered)
    page = " ".join(" ".join(parser.parts).split())
    for heading in ("Current Procedure Descriptions", "Findings", "Impressions"):
        assert heading in page
    assert page.index(NOTICE) < page.index("Findings") < page.index("1. Erste Zeile")
    assert product.report.findings


def test_priors_compared_and_cited_prior_images_named_by_their_headers(tmp_path: Path) -> None:
    study = write_phantom_study(tmp_path / "cur", slices=4, size=48, phases=["portal venous"])
    prior = write_phantom_study(tmp_path / "pri", slices=4, size=48, prior_of=study,
                                phases=["portal venous"])
    settings = Settings(data_dir=tmp_path / "data", site={"timezone": ZONE})
    _product, files = draft_folder(settings, study.directory, [prior.directory], "ct-generic",
                                   tmp_path / "out", backend=scripted())
    header = pydicom.dcmread(prior.paths[0], stop_before_pixels=True)
    date = f"{header.StudyDate[:4]}-{header.StudyDate[4:6]}-{header.StudyDate[6:]}"
    sr = pydicom.dcmread(files["sr"])
    assert _dciodvfy_errors(files["sr"]) == []
    priors = [i.TextValue for i in _section(sr, "Prior Procedure Descriptions").ContentSequence]
    assert priors and all(p.startswith(f"{date}: CT") for p in priors)
    # The scripted model cites the last frame: the prior's, named by the prior's header.
    [finding] = [i for i in _section(sr, "Findings").ContentSequence
                 if i.ConceptNameCodeSequence[0].CodeValue == "121071"]
    prior_headers = _headers(prior.directory)
    cited = [str(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
             for item in finding.ContentSequence]
    [prior_uid] = [uid for uid in cited if uid in prior_headers]
    place = _place(prior_headers[prior_uid], [])
    assert f"{place} (prior, {date})" in finding.TextValue
    msg = hl7.parse(files["oru"].read_bytes().decode("utf-8"))
    comparison = [str(o[5]) for o in msg.segments("OBX") if str(o[3][0][0]) == "18834-2"]
    assert comparison and comparison[0].startswith(f"Prior {date}: CT")
    assert f"PRIORS COMPARED\n{date}: CT" in files["text"].read_text("utf-8")
