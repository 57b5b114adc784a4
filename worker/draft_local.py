"""`radraft draft`: one study folder to SR, TID 1500, KOS, HL7 and the rendered draft in a
folder, with no database and no server."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from radraft.core.errors import ConfigError, FrameError
from radraft.core.settings import Settings
from radraft.ehr.outbound import OrderInfo
from radraft.reporting.frames.profile_choice import AUTO, choose_profile
from radraft.reporting.model import ModelBackend, make_backend
from radraft.worker.pipeline import DraftProduct, DraftRequest, run_draft

FILE_NAMES = {"sr": "sr.dcm", "tid1500": "tid1500.dcm", "kos": "kos.dcm", "oru": "oru.hl7",
              "alert": "ed_alert.hl7", "text": "draft.txt", "html": "draft.html",
              "sheet": "contact_sheet.png"}


def study_identity(study: Path) -> tuple[str, str, OrderInfo | None]:
    """(Study Instance UID, version digest of the image SOP UIDs, order from the header)."""
    study_uids: set[str] = set()
    sops: list[str] = []
    first = None
    for path in sorted(study.rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError):
            continue
        if "PixelData" not in ds and "FloatPixelData" not in ds and "Rows" not in ds:
            continue
        first = first or ds
        study_uids.add(str(ds.StudyInstanceUID))
        sops.append(str(ds.SOPInstanceUID))
    if not study_uids or first is None:
        raise FrameError(f"{study}: no DICOM image found")
    if len(study_uids) > 1:
        raise FrameError(f"{study}: holds {len(study_uids)} studies; give one study per folder")
    version = hashlib.sha256("\n".join(sorted(sops)).encode()).hexdigest()[:16]
    accession = str(first.get("AccessionNumber", "") or "")
    order = OrderInfo(accession=accession, patient_id=str(first.get("PatientID", "")),
                      modality=str(first.get("Modality", ""))) if accession else None
    return study_uids.pop(), version, order


def ensure_model(settings: Settings, note: Callable[[str], None]) -> None:
    """Build the tiny test model when the in-process backend has no model directory yet."""
    if settings.model.backend != "transformers" or (settings.model_path / "config.json").exists():
        return
    try:
        # Imported here: it needs the model extra (torch, transformers).
        from radraft.reporting.tiny_model import build_tiny_model
    except ImportError as exc:
        raise ConfigError(f"no model at {settings.model_path} and the tiny model builder "
                          f"(radraft.reporting.tiny_model) cannot load: {exc}") from exc
    note(f"building the tiny test model in {settings.model_path} (once)")
    build_tiny_model(settings.model_path)


def consistency_summary(product: DraftProduct) -> dict[str, Any]:
    """The check's verdict for report.json and the CLI (worker.checking)."""
    checked = product.checked
    if checked is None:
        return {"state": "unchecked"}
    return {"state": checked.verdict.state, "reasons": checked.verdict.reason_texts(),
            "reasks": checked.reasks, "earlier_reasons": checked.earlier,
            "merged": list(checked.verdict.merged), "alert": product.alert}


def draft_folder(
    settings: Settings, study: Path, priors: Sequence[Path], profile_name: str, out: Path,
    *, progress: Callable[[str], None] | None = None, backend: ModelBackend | None = None,
) -> tuple[DraftProduct, dict[str, Path]]:
    """Draft `study` and write every output into `out`; returns the product and the files.

    `profile_name` "auto" picks the profile from the study's modality and body part; which
    one and why go into report.json ("profile", "profile_chosen_by").
    """
    chosen_by = "given"
    if profile_name == AUTO:
        profile_name, chosen_by = choose_profile(study, settings.profiles)
    if profile_name not in settings.profiles:
        raise ConfigError(f"unknown profile {profile_name!r}; known: "
                          f"{', '.join(sorted(settings.profiles))}")
    note = progress or (lambda _m: None)
    study_uid, version, order = study_identity(study)
    if backend is None:
        ensure_model(settings, note)
        backend = make_backend(settings)
    # Each run is a new draft with its own identifiers: its SR content time and MSH-7 say
    # when it was made, and the model may answer differently, so two runs must never put
    # different bytes under one SOP Instance UID or MSH-10. The run's moment salts the
    # job key's version part (output series stay per study and profile).
    now = datetime.now(UTC)
    run_version = f"{version}@{now:%Y%m%dT%H%M%S.%f}"
    request = DraftRequest(
        study=study, priors=list(priors), profile=settings.profiles[profile_name],
        job_key=(study_uid, run_version, profile_name), order=order, progress=progress,
        now=now,
    )
    product = run_draft(settings, request, backend)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for item in product.items:
        path = out / FILE_NAMES.get(item.payload_kind, f"{item.payload_kind}.bin")
        path.write_bytes(item.payload)
        written[item.payload_kind] = path
    report = out / "report.json"
    report.write_text(json.dumps({
        "study_uid": study_uid, "version": version, "profile": profile_name,
        "profile_chosen_by": chosen_by,
        "drafted_at": now.isoformat(), "uids": product.uids,
        "model": product.model_name, "prompt_sha256": product.prompt_sha256,
        "frames": product.frame_count, "timings_s": product.timings,
        "report": product.report.model_dump(mode="json"),
        "consistency": consistency_summary(product),
    }, indent=1))
    written["report"] = report
    return product, written
