"""Key Object Selection (TID 2010) titled "Of Interest" listing the cited key images.

Never an IOCM rejection title (113001, 113037, 113038, 113039): those make a PACS hide
the images they list.
"""

from __future__ import annotations

import highdicom as hd
from highdicom.sr import CodedConcept
from highdicom.sr.utils import collect_evidence
from pydicom.dataset import Dataset

from radraft.reporting.report_schema import DraftReport
from radraft.reporting.sequence import FrameSequence
from radraft.reporting.sr.common import (
    MANUFACTURER,
    BuildContext,
    cited_instances,
    evidence_datasets,
    minimal_reference,
)
from radraft.reporting.sr.diagnostic import AI_NOTICE, device_observer
from radraft.reporting.sr.document import RequestInfo, finish_document, requested_procedures

OF_INTEREST = CodedConcept("113000", "DCM", "Of Interest")
REJECTION_TITLES = frozenset({"113001", "113037", "113038", "113039"})
KOS_SERIES_NUMBER = 9903


def build_kos(report: DraftReport, seq: FrameSequence, ctx: BuildContext, *,
              order: RequestInfo | None) -> hd.ko.KeyObjectSelectionDocument | None:
    """The KOS of the cited images, or None when the draft cites no frame."""
    cited = cited_instances(report, seq)
    if not cited:
        return None
    known = {str(ds.SOPInstanceUID): ds for ds in ctx.sources}
    selected: list[Dataset] = []
    for instance in cited:
        ds = known.get(instance.sop_instance_uid) or minimal_reference(instance)
        if "Rows" not in ds:
            # highdicom writes IMAGE items only for datasets with Rows/Columns.
            ds = minimal_reference(instance)
            ds.Rows = ds.Columns = 1
        selected.append(ds)
    content = hd.ko.KeyObjectSelection(
        document_title=OF_INTEREST,
        referenced_objects=selected,
        observer_device_context=device_observer(ctx),
        description=f"Images cited by the {AI_NOTICE.rstrip('.')}",
    )
    frames = {c.sop_instance_uid: c.frame_numbers for c in cited}
    for item in content[0].ContentSequence:
        if item.ValueType == "IMAGE":
            ref = item.ReferencedSOPSequence[0]
            numbers = frames.get(str(ref.ReferencedSOPInstanceUID), ())
            if numbers:
                ref.ReferencedFrameNumber = list(numbers)
    kos = hd.ko.KeyObjectSelectionDocument(
        evidence=evidence_datasets(ctx, cited),
        content=content,
        series_instance_uid=ctx.series_uid("kos"),
        series_number=KOS_SERIES_NUMBER,
        sop_instance_uid=ctx.uid("kos"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        requested_procedures=requested_procedures(ctx, order),
        specific_character_set=ctx.charset,
    )
    # The KO Document module has only Current Requested Procedure Evidence: it lists
    # every referenced instance, prior studies included, and nothing else.
    same, other = collect_evidence(
        list(selected), content[0], study_instance_uid=ctx.current_study_uid
    )
    kos.CurrentRequestedProcedureEvidenceSequence = same + other
    finish_document(kos, ctx, series_description="radraft AI key images", order=order)
    return kos
