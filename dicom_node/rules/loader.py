"""Load and check a rules YAML file; every error names its line.

Format (README "Routing rules"):

    rules:
      - name: ct-head-emergency
        match:
          modality: [CT]                     # any of
          body_part: [HEAD, BRAIN]           # any of
          study_description: "(?i)head"      # regular expression (search)
          calling_aet: [CT_ED]               # any of
          institution: "(?i)general"         # regular expression
          patient_age: {min: 18, max: 130}   # years, inclusive
          time: {days: [mon, tue], from: "07:00", to: "19:00"}   # site time zone
          series_count: {min: 2}
          order_department: "(?i)emergency"  # from the HL7 order, when there is one
          order_priority: [stat, urgent]
          order_reason: "(?i)stroke"
          order_location: "(?i)^ED"
        action: draft                        # draft | ignore
        profile: ct-generic
        priority: stat                       # stat | urgent | routine
        destinations: [pacs, ris]
        continue: false                      # true: later rules may match as well
        mode: live                           # shadow: drafted, delivered only to shadow
                                             # destinations (README "Shadow mode")
        on_discontinued: ignore              # draft | ignore (an MPPS step DISCONTINUED)
        complete_when: {series_count: 3, modalities: [CT]}   # rules/completion.py
      - name: everything-else
        default: true                        # used only when no other rule matched
        action: ignore
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection
from datetime import time
from pathlib import Path
from typing import Any

from radraft.core.errors import ConfigError
from radraft.core.types import Priority
from radraft.core.yaml_lines import LineMap, Location, load_yaml_with_lines
from radraft.dicom_node.rules.completion import parse_complete_when, parse_on_discontinued
from radraft.dicom_node.rules.facts import StudyFacts
from radraft.dicom_node.rules.model import (
    DAYS,
    Action,
    AnyOf,
    Between,
    Condition,
    Matches,
    Rule,
    RuleSet,
    TimeWindow,
)
from radraft.dicom_node.rules.regex import compile_pattern

RULE_KEYS = {"name", "match", "action", "profile", "priority", "destinations", "continue",
             "default", "description", "mode", "on_discontinued", "complete_when"}
_ANY_OF: dict[str, Callable[[StudyFacts], str | frozenset[str] | None]] = {
    "modality": lambda f: f.modalities,
    "body_part": lambda f: f.body_parts,
    "calling_aet": lambda f: f.calling_aet,
    "order_priority": lambda f: f.order_priority,
}
_REGEX: dict[str, Callable[[StudyFacts], str | None]] = {
    "study_description": lambda f: f.study_description,
    "institution": lambda f: f.institution,
    "order_department": lambda f: f.order_department,
    "order_reason": lambda f: f.order_reason,
    "order_location": lambda f: f.order_location,
}
_RANGE: dict[str, Callable[[StudyFacts], int | None]] = {
    "patient_age": lambda f: f.patient_age_years,
    "series_count": lambda f: f.series_count,
}
MATCH_KEYS = set(_ANY_OF) | set(_REGEX) | set(_RANGE) | {"time"}
# A rules file is a page or two of YAML; the bound keeps one pasted into the console small.
MAX_RULES_BYTES = 64 * 1024
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class _Errors:
    def __init__(self, lines: LineMap) -> None:
        self.lines = lines
        self.items: list[str] = []

    def add(self, loc: Location, message: str) -> None:
        key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        self.items.append(f"{self.lines.where(loc)}: {key + ': ' if key else ''}{message}")


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
        return [str(v) for v in value]
    return None


def _condition(key: str, value: Any, loc: Location, errors: _Errors) -> Condition | None:
    if key in _ANY_OF:
        values = _strings(value)
        if values is None:
            errors.add(loc, "expected a value or a non-empty list of values")
            return None
        return AnyOf(key, frozenset(v.strip().upper() for v in values), _ANY_OF[key])
    if key in _REGEX:
        if not isinstance(value, str):
            errors.add(loc, "expected a regular expression (a string)")
            return None
        try:
            return Matches(key, compile_pattern(value), _REGEX[key])
        except ValueError as exc:
            errors.add(loc, str(exc))
            return None
    if key in _RANGE:
        return _range(key, value, loc, errors)
    return _time(value, loc, errors)


def _range(key: str, value: Any, loc: Location, errors: _Errors) -> Between | None:
    if not isinstance(value, dict) or not value or set(value) - {"min", "max"}:
        errors.add(loc, "expected {min: N, max: N} (either may be left out)")
        return None
    bounds: dict[str, float | None] = {"min": None, "max": None}
    for bound, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            errors.add((*loc, bound), "expected a number")
            return None
        bounds[bound] = number
    low, high = bounds["min"], bounds["max"]
    if low is not None and high is not None and low > high:
        errors.add(loc, "min is greater than max")
        return None
    return Between(key, low, high, _RANGE[key])


def _clock(value: Any, loc: Location, errors: _Errors) -> time | None:
    match = _CLOCK.match(str(value)) if isinstance(value, str) else None
    if match is None:
        errors.add(loc, 'expected a time "HH:MM" (quoted)')
        return None
    return time(int(match.group(1)), int(match.group(2)))


def _time(value: Any, loc: Location, errors: _Errors) -> TimeWindow | None:
    if not isinstance(value, dict) or set(value) - {"days", "from", "to"}:
        errors.add(loc, 'expected {days: [mon, ...], from: "HH:MM", to: "HH:MM"}')
        return None
    days = _strings(value.get("days", list(DAYS)))
    if days is None or any(d.lower() not in DAYS for d in days):
        errors.add((*loc, "days"), f"expected a list of {', '.join(DAYS)}")
        return None
    start = _clock(value.get("from", "00:00"), (*loc, "from"), errors)
    end = _clock(value.get("to", "23:59"), (*loc, "to"), errors)
    if start is None or end is None:
        return None
    if start == end:
        errors.add(loc, "from and to are equal: the window is empty")
        return None
    return TimeWindow(frozenset(d.lower() for d in days), start, end)


def _rule(
    raw: Any, index: int, errors: _Errors, profiles: Collection[str] | None,
    destinations: Collection[str] | None,
) -> Rule | None:
    loc: Location = ("rules", index)
    if not isinstance(raw, dict):
        errors.add(loc, "a rule is a mapping (name, match, action ...)")
        return None
    before = len(errors.items)
    for key in sorted(set(raw) - RULE_KEYS, key=str):
        errors.add((*loc, key), f"unknown key (allowed: {', '.join(sorted(RULE_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.add((*loc, "name") if "name" in raw else loc, "every rule needs a name")
        name = f"rule {index + 1}"
    conditions: list[Condition] = []
    match = raw.get("match", {})
    if not isinstance(match, dict):
        errors.add((*loc, "match"), "expected a mapping of conditions")
        match = {}
    for key, value in match.items():
        if key not in MATCH_KEYS:
            errors.add((*loc, "match", key),
                       f"unknown match key (allowed: {', '.join(sorted(MATCH_KEYS))})")
            continue
        condition = _condition(key, value, (*loc, "match", key), errors)
        if condition is not None:
            conditions.append(condition)
    action = raw.get("action")
    if action not in ("draft", "ignore"):
        errors.add((*loc, "action") if "action" in raw else loc,
                   "action must be draft or ignore")
        action = "ignore"
    profile = raw.get("profile", "")
    priority = Priority.ROUTINE
    dests: list[str] = []
    if action == "draft":
        if not isinstance(profile, str) or not profile:
            errors.add(loc, "a draft rule needs a profile")
        elif profiles is not None and profile not in profiles:
            errors.add((*loc, "profile"), f"unknown profile {profile!r} "
                       f"(configured: {', '.join(sorted(profiles)) or 'none'})")
        try:
            priority = Priority(str(raw.get("priority", "routine")).lower())
        except ValueError:
            errors.add((*loc, "priority"), "priority must be stat, urgent or routine")
        raw_dests = raw.get("destinations", [])
        listed = _strings(raw_dests) if raw_dests != [] else []
        if listed is None:
            errors.add((*loc, "destinations"), "expected a list of destination names")
            listed = []
        for dest in listed:
            if destinations is not None and dest not in destinations:
                errors.add((*loc, "destinations"), f"unknown destination {dest!r} "
                           f"(configured: {', '.join(sorted(destinations)) or 'none'})")
        dests = listed
    else:
        for key in ("profile", "priority", "destinations"):
            if key in raw:
                errors.add((*loc, key), f"an ignore rule takes no {key}")
    mode = raw.get("mode", "live")
    if mode not in ("live", "shadow"):
        errors.add((*loc, "mode"), "mode must be live or shadow")
        mode = "live"
    elif "mode" in raw and action != "draft":
        errors.add((*loc, "mode"), "an ignore rule takes no mode")
    flags = {}
    for key in ("continue", "default"):
        flags[key] = raw.get(key, False)
        if not isinstance(flags[key], bool):
            errors.add((*loc, key), "expected true or false")
            flags[key] = False
    on_discontinued = parse_on_discontinued(
        raw.get("on_discontinued", "ignore"), (*loc, "on_discontinued"), errors.add)
    complete_when = None if "complete_when" not in raw else parse_complete_when(
        raw["complete_when"], (*loc, "complete_when"), errors.add)
    if len(errors.items) > before:
        return None
    kind: Action = "draft" if action == "draft" else "ignore"
    return Rule(
        name=name, line=errors.lines.line_of(loc) or 0, conditions=tuple(conditions),
        action=kind, profile=profile if kind == "draft" else "", priority=priority,
        destinations=tuple(dests), continue_=bool(flags["continue"]),
        default=bool(flags["default"]), mode="shadow" if mode == "shadow" else "live",
        on_discontinued=on_discontinued, complete_when=complete_when,
    )


def load_rules(
    path: Path, *, timezone: str = "UTC", profiles: Collection[str] | None = None,
    destinations: Collection[str] | None = None,
) -> RuleSet:
    """Parse and check `path`. Raises ConfigError listing EVERY error with its line.

    With `profiles` / `destinations` (the configured names) the names rules use are checked too.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    if size > MAX_RULES_BYTES:
        raise ConfigError(f"{path}: {size} bytes; a rules file holds at most {MAX_RULES_BYTES}")
    # Anchors and aliases are refused: a few hundred bytes of nested aliases expand to
    # billions of nodes (a "billion laughs"), and rules never need them.
    data, lines = load_yaml_with_lines(path, aliases=False)
    errors = _Errors(lines)
    raw_rules: Any = data.get("rules") if isinstance(data, dict) else None
    if isinstance(data, dict):
        for key in sorted(set(data) - {"rules"}, key=str):
            errors.add((key,), "unknown key (the file holds `rules:`)")
    if not isinstance(raw_rules, list):
        errors.add(("rules",) if isinstance(data, dict) and "rules" in data else (),
                   "expected `rules:` with a list of rules")
        raw_rules = []
    rules = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_rules):
        rule = _rule(raw, index, errors, profiles, destinations)
        if rule is None:
            continue
        if rule.name in seen:
            errors.add(("rules", index, "name"),
                       f"duplicate rule name {rule.name!r} (first on line {seen[rule.name]})")
        seen[rule.name] = rule.line
        rules.append(rule)
    if sum(r.default for r in rules) > 1:
        errors.add(("rules",), "more than one default rule")
    if errors.items:
        raise ConfigError(f"{path}: {len(errors.items)} error(s):\n  " + "\n  ".join(errors.items))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return RuleSet(tuple(rules), timezone=timezone, source=str(path), digest=digest)
