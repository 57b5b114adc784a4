"""The consistency check on crafted answers: each rule and each reason, the merge of
duplicates (the one normalisation), the profile policy, the re-ask and note texts."""

from __future__ import annotations

from typing import Any

import pytest

from radraft.core.errors import ConfigError
from radraft.core.settings import ProfileSettings, Settings
from radraft.reporting.checks import (
    CheckPolicy,
    check_report,
    is_empty_text,
    note_text,
    policy_for,
    reask_text,
)
from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import Segment

LIVER, BRAIN, BONE, LUNG = "SCT:10200004", "SCT:12738006", "SCT:272673000", "SCT:39607008"
LESION, PE, NORMAL, HEMORRHAGE = "SCT:52988006", "SCT:59282003", "SCT:17621005", "SCT:50960005"


def _segment(index: int, start: int, stop: int, body_part: str, *, prior: bool = False,
             description: str = "") -> Segment:
    return Segment(index, start, stop, "1.2.3", f"1.2.3.{index}", "20261120", "CT",
                   description, "portal venous", "axial", "abdomen", "average", 10, prior,
                   body_part=body_part)


# Frames 0-9 abdomen (current), 10-13 head (current), 14-17 abdomen (prior).
SEGMENTS = [_segment(0, 0, 10, "ABDOMEN"), _segment(1, 10, 14, "HEAD"),
            _segment(2, 14, 18, "ABDOMEN", prior=True)]
FRAMES = 18


def _finding(text: str = "laceration of segment VII with active contrast extravasation",
             severity: str = "critical", ftype: str = HEMORRHAGE, site: str = LIVER,
             frames: list[int] | None = None, system: str = "liver") -> dict[str, Any]:
    return {"system": system, "text": text, "severity": severity, "finding_type": ftype,
            "finding_site": site, "frames": [3, 4] if frames is None else frames}


def _report(level: str = "critical", findings: list[dict[str, Any]] | None = None,
            critical: list[str] | None = None, reasons: list[str] | None = None,
            impression: list[str] | None = None) -> DraftReport:
    return DraftReport.model_validate({
        "exam": "CT abdomen", "technique": "", "comparison": "", "clinical_history": "",
        "findings": [_finding()] if findings is None else findings,
        "impression": [{"rank": i + 1, "text": t} for i, t in enumerate(
            impression if impression is not None else ["Liver laceration with bleeding."])],
        "recommendations": [],
        "triage": {"level": level,
                   "reasons": ["active bleeding"] if reasons is None else reasons,
                   "critical_findings": ["hepatic bleed"] if critical is None else critical},
        "limitations": "",
    })


def _codes(report: DraftReport, policy: CheckPolicy | None = None) -> list[str]:
    return [r.code for r in check_report(report, SEGMENTS, FRAMES, policy).reasons]


def test_a_supported_critical_answer_is_consistent_and_names_its_finding() -> None:
    verdict = check_report(_report(), SEGMENTS, FRAMES)
    assert verdict.state == "consistent" and verdict.consistent
    assert verdict.reasons == () and verdict.supporting == (0,)
    assert verdict.report == _report()  # nothing changed


def test_the_tiny_models_answer_fails_for_every_reason_it_gives() -> None:
    """Today's real-study answer: URGENT, critical finding "normal", a normal finding coded
    Pulmonary embolism at Bone."""
    report = _report("urgent", [_finding("normal", "normal", PE, BONE, [0], system="normal")],
                     critical=["normal"], reasons=["normal"], impression=["normal"] * 4)
    verdict = check_report(report, SEGMENTS, FRAMES)
    assert verdict.state == "inconsistent" and verdict.supporting == ()
    assert set(_codes(report)) == {"type-site-mismatch", "severity-type-mismatch",
                                   "boilerplate", "triage-unsupported"}
    texts = " | ".join(verdict.reason_texts())
    assert "Pulmonary embolism cannot be at Bone" in texts
    assert "critical finding 'normal' says nothing" in texts
    assert "urgent triage is not supported" in texts
    # The four "normal" impressions merged into one (and the merge is reported).
    assert len(verdict.report.impression) == 1 and len(verdict.merged) == 3


@pytest.mark.parametrize(("level", "severity", "consistent"), [
    ("critical", "critical", True), ("critical", "significant", False),
    ("urgent", "significant", True), ("urgent", "critical", True), ("urgent", "minor", False),
])
def test_triage_needs_a_finding_of_matching_severity(level: str, severity: str,
                                                     consistent: bool) -> None:
    report = _report(level, [_finding(severity=severity)])
    assert ("triage-unsupported" not in _codes(report)) is consistent


@pytest.mark.parametrize("frames", [[], [15, 16], [11]])
def test_triage_needs_a_cited_frame_of_this_study_that_shows_the_site(
        frames: list[int]) -> None:
    """No frame; only prior frames; a head frame for a liver finding."""
    codes = _codes(_report(findings=[_finding(frames=frames)]))
    assert "triage-unsupported" in codes
    assert ("frame-wrong-region" in codes) is (frames == [11])


def test_a_frame_outside_the_sequence_is_a_reason() -> None:
    codes = _codes(_report(findings=[_finding(frames=[3, 40])]))
    # A finding with an invalid citation supports nothing, even if another frame is valid.
    assert codes == ["frame-out-of-range", "triage-unsupported"]


def test_a_critical_finding_under_routine_triage_is_a_reason() -> None:
    verdict = check_report(_report("routine", critical=[]), SEGMENTS, FRAMES)
    assert [r.code for r in verdict.reasons] == ["critical-under-routine"]
    assert verdict.reasons[0].finding == 1


def test_routine_triage_with_minor_findings_is_consistent() -> None:
    report = _report("routine", [_finding("small simple cyst, 8 mm", "minor",
                                          "SCT:367643001")], critical=[], reasons=["none"],
                     impression=["normal"])
    # Routine: a reason "none" and an impression "normal" are not alerts' boilerplate.
    assert _codes(report) == []


def test_codes_the_profile_does_not_allow_are_reasons() -> None:
    policy = policy_for("ct-head", Settings().profiles["ct-head"])
    codes = _codes(_report(), policy)
    assert "site-not-allowed" in codes and "triage-unsupported" in codes
    only_lesions = CheckPolicy("p", finding_types=frozenset({LESION}))
    assert _codes(_report(), only_lesions)[0] == "type-not-allowed"


def test_a_type_that_cannot_be_at_the_site_is_a_reason() -> None:
    codes = _codes(_report(findings=[_finding(ftype=PE, site=LIVER)]))
    assert codes[0] == "type-site-mismatch" and "triage-unsupported" in codes


@pytest.mark.parametrize(("severity", "ftype"), [("critical", NORMAL), ("normal", PE)])
def test_severity_and_type_must_agree(severity: str, ftype: str) -> None:
    site = LUNG if ftype == PE else LIVER
    codes = _codes(_report("routine", [_finding(severity=severity, ftype=ftype, site=site,
                                                frames=[2])], critical=[]))
    assert "severity-type-mismatch" in codes


@pytest.mark.parametrize("text", ["normal", "Critical.", "normal normal normal", "n/a", "--"])
def test_boilerplate_finding_text_is_a_reason(text: str) -> None:
    assert is_empty_text(text)
    codes = _codes(_report(findings=[_finding(text=text)]))
    assert "boilerplate" in codes and "triage-unsupported" in codes


def test_boilerplate_under_alerting_triage_in_reasons_and_impression() -> None:
    codes = _codes(_report(reasons=["urgent"], impression=["Normal."]))
    assert codes == ["boilerplate", "boilerplate"]
    assert not is_empty_text("normal liver")


def test_duplicates_merge_and_the_merge_is_reported() -> None:
    report = _report(findings=[_finding(frames=[3]), _finding(frames=[4, 3]),
                               _finding("small cyst", "minor", "SCT:367643001", frames=[5])])
    verdict = check_report(report, SEGMENTS, FRAMES)
    assert verdict.consistent
    assert len(verdict.report.findings) == 2 and verdict.report.findings[0].frames == [3, 4]
    assert verdict.merged == ("finding 2 merged into finding 1 (same text)",)


def test_the_same_text_with_another_severity_is_a_conflict_not_a_merge() -> None:
    report = _report(findings=[_finding(), _finding(severity="minor")])
    verdict = check_report(report, SEGMENTS, FRAMES)
    assert [r.code for r in verdict.reasons] == ["conflicting-duplicates"]
    assert len(verdict.report.findings) == 2


def test_unknown_body_part_falls_back_to_descriptions_then_is_not_checked() -> None:
    described = [_segment(0, 0, 10, "", description="CT HEAD WO")]
    unknown = [_segment(0, 0, 10, "", description="SERIES 2")]
    report = _report()
    assert "frame-wrong-region" in [r.code for r in check_report(report, described, 10).reasons]
    assert check_report(report, unknown, 10).consistent
    # The study's description (a real MR wrist series has only "LEFT WRIST" there).
    wrist = check_report(report, unknown, 10, study_description="LEFT WRIST")
    assert "frame-wrong-region" in [r.code for r in wrist.reasons]


def test_policy_names_the_key_of_an_unknown_code() -> None:
    profile = ProfileSettings(finding_sites=["Liver", "SCT:12738006"])
    policy = policy_for("p", profile)
    assert policy.finding_sites == frozenset({LIVER, BRAIN}) and policy.finding_types is None
    with pytest.raises(ConfigError, match=r"profiles\.p\.finding_types: 'Gout'"):
        policy_for("p", ProfileSettings(finding_types=["Gout"]))


def test_every_default_profile_has_a_valid_policy() -> None:
    for name, profile in Settings().profiles.items():
        policy_for(name, profile)


def test_reask_and_note_texts_carry_the_reasons() -> None:
    verdict = check_report(_report(findings=[_finding(text="normal")]), SEGMENTS, FRAMES)
    asked = reask_text(verdict.reasons)
    assert "failed radraft's consistency check" in asked and "says nothing" in asked
    note = note_text(verdict, reasks=1, alert="held")
    assert note.startswith("radraft consistency check: INCONSISTENT after 1 re-ask(s)")
    assert "ED alert held" in note
    assert note_text(check_report(_report(), SEGMENTS, FRAMES), reasks=0, alert="") == ""


def test_the_note_fits_the_limit_with_the_triage_reason_first() -> None:
    report = _report("urgent", [_finding("normal", "normal", PE, BONE, [0], system="normal")],
                     critical=["normal"], reasons=["normal"], impression=["normal"])
    verdict = check_report(report, SEGMENTS, FRAMES)
    note = note_text(verdict, reasks=1, alert="held", limit=400)
    assert len(note) <= 400 and "more (console)" in note
    assert note.startswith("radraft consistency check: INCONSISTENT after 1 re-ask(s): "
                           "urgent triage is not supported")
    assert len(note_text(verdict, reasks=0, alert="", limit=120)) <= 120
