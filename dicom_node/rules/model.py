"""Rules as data: conditions, rules, the rule set and its decisions (no eval anywhere)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo

from radraft.core.types import Priority
from radraft.dicom_node.rules.completion import CompleteWhen
from radraft.dicom_node.rules.facts import StudyFacts
from radraft.dicom_node.rules.regex import Pattern

Action = Literal["draft", "ignore"]
# shadow: drafted and stored, delivered only to destinations marked `shadow: true`.
Mode = Literal["live", "shadow"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    why: str


@dataclass(frozen=True)
class AnyOf:
    """The fact (a value or a set of values) contains one of `values` (case-insensitive)."""

    key: str
    values: frozenset[str]
    fact: Callable[[StudyFacts], str | frozenset[str] | None]

    def check(self, facts: StudyFacts, zone: ZoneInfo) -> Verdict:
        value = self.fact(facts)
        if value is None:
            return Verdict(False, f"{self.key}: unknown (no order)")
        have = value if isinstance(value, frozenset) else frozenset({value.strip().upper()})
        shown = "/".join(sorted(have)) or "none"
        wanted = ", ".join(sorted(self.values))
        if have & self.values:
            return Verdict(True, f"{self.key} {shown} in [{wanted}]")
        return Verdict(False, f"{self.key} {shown} not in [{wanted}]")


@dataclass(frozen=True)
class Matches:
    """The fact matches a regular expression (search; RE2, see rules.regex)."""

    key: str
    pattern: Pattern
    fact: Callable[[StudyFacts], str | None]

    def check(self, facts: StudyFacts, zone: ZoneInfo) -> Verdict:
        value = self.fact(facts)
        if value is None:
            return Verdict(False, f"{self.key}: unknown (no order)")
        if self.pattern.search(value):
            return Verdict(True, f"{self.key} {value!r} matches /{self.pattern.pattern}/")
        return Verdict(False, f"{self.key} {value!r} does not match /{self.pattern.pattern}/")


@dataclass(frozen=True)
class Between:
    """A number fact within [minimum, maximum] (either bound optional)."""

    key: str
    minimum: float | None
    maximum: float | None
    fact: Callable[[StudyFacts], int | None]

    def check(self, facts: StudyFacts, zone: ZoneInfo) -> Verdict:
        value = self.fact(facts)
        bounds = f"[{'' if self.minimum is None else self.minimum}, " \
                 f"{'' if self.maximum is None else self.maximum}]"
        if value is None:
            return Verdict(False, f"{self.key}: unknown")
        if self.minimum is not None and value < self.minimum:
            return Verdict(False, f"{self.key} {value} below {bounds}")
        if self.maximum is not None and value > self.maximum:
            return Verdict(False, f"{self.key} {value} above {bounds}")
        return Verdict(True, f"{self.key} {value} within {bounds}")


@dataclass(frozen=True)
class TimeWindow:
    """The decision time, in the site time zone, falls on `days` between start and end.

    A window whose end is before its start runs over midnight (19:00 to 07:00).
    """

    days: frozenset[str]
    start: time
    end: time

    def check(self, facts: StudyFacts, zone: ZoneInfo) -> Verdict:
        local = facts.now.astimezone(zone)
        day = DAYS[local.weekday()]
        clock = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            inside = self.start <= clock < self.end
            window_day = day
        else:
            inside = clock >= self.start or clock < self.end
            # After midnight the window belongs to the day it started on.
            window_day = DAYS[(local.weekday() - 1) % 7] if clock < self.end else day
        shown = f"{day} {clock.strftime('%H:%M')}"
        span = f"{self.start.strftime('%H:%M')}-{self.end.strftime('%H:%M')}"
        if inside and window_day in self.days:
            return Verdict(True, f"time {shown} in {span}")
        return Verdict(False, f"time {shown} outside {','.join(sorted(self.days))} {span}")


Condition = AnyOf | Matches | Between | TimeWindow


@dataclass(frozen=True)
class Rule:
    name: str
    line: int
    conditions: tuple[Condition, ...]
    action: Action
    profile: str = ""
    priority: Priority = Priority.ROUTINE
    destinations: tuple[str, ...] = ()
    continue_: bool = False
    default: bool = False
    mode: Mode = "live"
    # README "Knowing when a study is complete": a DISCONTINUED MPPS step is drafted or not;
    # expected series that make the study complete without the timer.
    on_discontinued: str = "ignore"
    complete_when: CompleteWhen | None = None


@dataclass(frozen=True)
class RuleOutcome:
    """One decision: a rule's action, or "unmatched" when no rule (and no default) matched."""

    rule_name: str
    action: Literal["draft", "ignore", "unmatched"]
    profile: str = ""
    priority: Priority | None = None
    destinations: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    mode: Mode = "live"
    on_discontinued: str = "ignore"


@dataclass(frozen=True)
class RuleSet:
    """An ordered list of rules. First match wins unless it says `continue: true`."""

    rules: tuple[Rule, ...]
    timezone: str = "UTC"
    source: str = ""
    digest: str = ""
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_zone", ZoneInfo(self.timezone))

    def _verdicts(self, rule: Rule, facts: StudyFacts) -> tuple[bool, list[str]]:
        reasons = []
        for condition in rule.conditions:
            verdict = condition.check(facts, self._zone)
            reasons.append(verdict.why)
            if not verdict.ok:
                return False, reasons[-1:]
        return True, reasons or ["no conditions"]

    def decide(self, facts: StudyFacts) -> list[RuleOutcome]:
        """The outcomes for `facts`: matched rules in order, else the default, else unmatched."""
        outcomes: list[RuleOutcome] = []
        misses: list[str] = []
        for rule in self.rules:
            if rule.default:
                continue
            matched, reasons = self._verdicts(rule, facts)
            if not matched:
                misses.append(f"{rule.name}: {reasons[0]}")
                continue
            outcomes.append(_outcome(rule, reasons))
            if not rule.continue_:
                break
        if outcomes:
            return outcomes
        for rule in self.rules:
            if rule.default:
                matched, reasons = self._verdicts(rule, facts)
                if matched:
                    return [_outcome(rule, ["default rule", *misses])]
        return [RuleOutcome("", "unmatched", reasons=tuple(misses) or ("no rules",))]


def _outcome(rule: Rule, reasons: list[str]) -> RuleOutcome:
    return RuleOutcome(
        rule_name=rule.name, action=rule.action, profile=rule.profile,
        priority=rule.priority if rule.action == "draft" else None,
        destinations=rule.destinations, reasons=tuple(reasons), mode=rule.mode,
        on_discontinued=rule.on_discontinued,
    )
