"""The shape of a draft the HL7 builders read.

`ehr` must not import `reporting` (DESIGN.md arrows), so the builders accept anything
shaped like `radraft.reporting.report_schema.DraftReport`; the real one fits structurally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from radraft.core.types import TriageLevel


class FindingView(Protocol):
    @property
    def system(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def severity(self) -> str: ...  # normal | minor | significant | critical


class ImpressionView(Protocol):
    @property
    def rank(self) -> int: ...
    @property
    def text(self) -> str: ...


class TriageView(Protocol):
    @property
    def level(self) -> TriageLevel: ...
    @property
    def reasons(self) -> Sequence[str]: ...
    @property
    def critical_findings(self) -> Sequence[str]: ...


class ReportView(Protocol):
    @property
    def exam(self) -> str: ...
    @property
    def technique(self) -> str: ...
    @property
    def comparison(self) -> str: ...
    @property
    def clinical_history(self) -> str: ...
    @property
    def findings(self) -> Sequence[FindingView]: ...
    @property
    def impression(self) -> Sequence[ImpressionView]: ...
    @property
    def recommendations(self) -> Sequence[str]: ...
    @property
    def triage(self) -> TriageView: ...
    @property
    def limitations(self) -> str: ...
