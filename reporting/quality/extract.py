"""Which coded findings a report text asserts, denies or leaves uncertain.

A ConText-style rule engine (Harkema et al. 2009, the algorithm behind medspaCy's ConText):
trigger phrases of a category (negated, uncertain, historical, hypothetical, pseudo) open a
scope over the following (or preceding) words of their sentence, cut by terminators; a
finding phrase inside a scope takes the category. Lexicon and rules are YAML the site edits
(`lexicon_default.yaml` beside this file is the default for CT and MR).

Why not medspaCy itself: installing it pins spaCy 3.7, numpy 1.26 and a dozen compiled
packages into radraft's environment (checked with pip, 2026-12-06), and its default rules
are tuned for clinical notes, not radiology reports; the algorithm is small enough to keep
here with a radiology lexicon a site can read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from radraft.reporting.codes import FINDING_TYPES

DEFAULT_LEXICON = Path(__file__).with_name("lexicon_default.yaml")
CATEGORIES = ("negated", "uncertain", "historical", "hypothetical", "pseudo")
DIRECTIONS = ("forward", "backward", "both")

_WORD = re.compile(r"[a-z0-9]+(?:['/][a-z0-9]+)*")
# Sentence ends: . ! ? ; and line breaks, but not a decimal point ("3.5 cm").
_SENTENCE = re.compile(r"(?<!\d)[.!?;](?!\d)|\n")
# A heading opens a line or follows a sentence's full stop ("Indication: trauma. Findings:").
_HEADING = re.compile(r"(?im)(?:^|(?<=\.))[ \t]*([a-z][a-z /]{1,40}?)[ \t]*:")


class State(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"
    UNCERTAIN = "uncertain"


# When one text mentions a finding several times: present beats uncertain beats absent.
_RANK = {State.ABSENT: 0, State.UNCERTAIN: 1, State.PRESENT: 2}


class LexiconError(ValueError):
    """A lexicon file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]
    wildcard: bool  # the last word matches any ending
    kind: str  # "finding", "ignore", "terminator", or a modifier category
    value: str = ""  # the finding's code key, or the modifier's direction

    def match(self, tokens: list[str], at: int) -> bool:
        if at + len(self.words) > len(tokens):
            return False
        for offset, word in enumerate(self.words):
            token = tokens[at + offset]
            last = offset == len(self.words) - 1
            if not (token == word or (last and self.wildcard and token.startswith(word))):
                return False
        return True


@dataclass(frozen=True)
class Lexicon:
    findings: dict[str, tuple[str, ...]]
    phrases: tuple[_Phrase, ...]
    scope_words: int
    skip_sections: frozenset[str]
    critical: frozenset[str]
    critical_phrases: tuple[str, ...]
    source: str = ""
    _index: dict[str, tuple[_Phrase, ...]] = field(default_factory=dict, repr=False)

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """The finding code keys this lexicon can label, in the order of the file."""
        return tuple(self.findings)


def _words(phrase: str) -> tuple[tuple[str, ...], bool]:
    wildcard = phrase.endswith("*")
    return tuple(_WORD.findall(phrase.rstrip("*").lower())), wildcard


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise LexiconError(f"{where}: expected a list of phrases")
    return list(value)


def lexicon_from_data(data: Any, source: str = "") -> Lexicon:
    """Check and compile a lexicon mapping (the YAML file's content)."""
    if not isinstance(data, Mapping):
        raise LexiconError(f"{source}: a lexicon is a mapping (findings, modifiers, ...)")
    known = {c.key for c in FINDING_TYPES}
    phrases: list[_Phrase] = []
    findings: dict[str, tuple[str, ...]] = {}
    raw_findings = data.get("findings")
    if not isinstance(raw_findings, Mapping) or not raw_findings:
        raise LexiconError(f"{source}: findings: expected a mapping of code key -> phrases")
    for key, names in raw_findings.items():
        if key not in known:
            raise LexiconError(f"{source}: findings.{key}: not a finding type of "
                               "reporting/codes.py (e.g. SCT:36118008)")
        findings[str(key)] = tuple(_strings(names, f"{source}: findings.{key}"))
        for name in findings[str(key)]:
            words, wildcard = _words(name)
            phrases.append(_Phrase(words, wildcard, "finding", str(key)))
    modifiers = data.get("modifiers", {})
    if not isinstance(modifiers, Mapping):
        raise LexiconError(f"{source}: modifiers: expected a mapping of categories")
    for category, by_direction in modifiers.items():
        if category not in CATEGORIES or not isinstance(by_direction, Mapping):
            raise LexiconError(f"{source}: modifiers.{category}: unknown category "
                               f"(allowed: {', '.join(CATEGORIES)})")
        for direction, triggers in by_direction.items():
            if direction not in DIRECTIONS:
                raise LexiconError(f"{source}: modifiers.{category}.{direction}: direction "
                                   f"must be one of {', '.join(DIRECTIONS)}")
            where = f"{source}: modifiers.{category}.{direction}"
            for trigger in _strings(triggers, where):
                words, wildcard = _words(trigger)
                phrases.append(_Phrase(words, wildcard, category, direction))
    for kind, key in (("terminator", "terminators"), ("ignore", "ignore_phrases")):
        for text in _strings(data.get(key, []) or ["\x00"], f"{source}: {key}"):
            words, wildcard = _words(text)
            if words:
                phrases.append(_Phrase(words, wildcard, kind))
    critical = frozenset(_strings(data.get("critical", []) or ["-"], f"{source}: critical"))
    critical -= {"-"}
    unknown: set[str] = set(critical - set(findings))
    if unknown:
        raise LexiconError(f"{source}: critical: {', '.join(sorted(unknown))} not in findings")
    scope = data.get("scope_words", 12)
    if not isinstance(scope, int) or scope < 1:
        raise LexiconError(f"{source}: scope_words: expected a positive whole number")
    # The same trigger listed under two directions of one category scopes both ways.
    merged: dict[tuple[tuple[str, ...], bool, str, str], _Phrase] = {}
    for phrase in phrases:
        key = (phrase.words, phrase.wildcard, phrase.kind,
               phrase.value if phrase.kind == "finding" else "")
        seen = merged.get(key)
        if seen is not None and seen.value != phrase.value and phrase.kind in CATEGORIES:
            merged[key] = _Phrase(phrase.words, phrase.wildcard, phrase.kind, "both")
        elif seen is None:
            merged[key] = phrase
    phrases = list(merged.values())
    index: dict[str, list[_Phrase]] = {}
    for phrase in phrases:
        if phrase.words:
            index.setdefault(phrase.words[0], []).append(phrase)
    return Lexicon(
        findings=findings, phrases=tuple(phrases), scope_words=scope,
        skip_sections=frozenset(s.lower() for s in data.get("skip_sections", []) or []),
        critical=critical,
        critical_phrases=tuple(p.lower() for p in data.get("critical_phrases", []) or []),
        source=source,
        # Longest first; at equal length a finding beats a modifier ("no acute abnormality").
        _index={first: tuple(sorted(group, key=lambda p: (-len(p.words), p.kind != "finding")))
                for first, group in index.items()},
    )


def load_lexicon(path: Path | None = None) -> Lexicon:
    """The lexicon in `path` (default: the shipped CT/MR lexicon)."""
    path = path or DEFAULT_LEXICON
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise LexiconError(f"{path}: cannot read the lexicon: {exc}") from exc
    return lexicon_from_data(data, str(path))


@cache
def default_lexicon() -> Lexicon:
    return load_lexicon(DEFAULT_LEXICON)


@dataclass(frozen=True)
class Mention:
    finding: str
    state: State | None  # None: historical or hypothetical, not asserted
    sentence: int
    categories: frozenset[str]


def _match(lexicon: Lexicon, tokens: list[str]) -> list[tuple[int, _Phrase]]:
    """Longest phrase at each position, left to right, no overlaps."""
    found: list[tuple[int, _Phrase]] = []
    at = 0
    while at < len(tokens):
        for phrase in lexicon._index.get(tokens[at], ()):
            if phrase.match(tokens, at):
                found.append((at, phrase))
                at += len(phrase.words)
                break
        else:
            # a wildcard single word ("effusion*") is indexed by its stem only
            at += 1
    return found


def _sentence_mentions(lexicon: Lexicon, sentence: str, number: int) -> list[Mention]:
    tokens = _WORD.findall(sentence.lower())
    matches = _match(lexicon, tokens)
    targets = [(at, p) for at, p in matches if p.kind == "finding"]
    if not targets:
        return []
    stops = sorted(at for at, p in matches if p.kind == "terminator")
    triggers = [(at, p) for at, p in matches if p.kind in CATEGORIES and p.kind != "pseudo"]
    mentions = []
    for at, target in targets:
        categories: set[str] = set()
        for start, trigger in triggers:
            end = start + len(trigger.words)
            if trigger.value in ("forward", "both") and start < at:
                stop = next((s for s in stops if end <= s < at + 1), None)
                if stop is None and at - end < lexicon.scope_words:
                    categories.add(trigger.kind)
            if trigger.value in ("backward", "both") and start > at:
                stop = next((s for s in stops if at < s < start), None)
                if stop is None and start - at <= lexicon.scope_words:
                    categories.add(trigger.kind)
        mentions.append(Mention(target.value, _state(categories), number,
                                frozenset(categories)))
    return mentions


def _state(categories: set[str]) -> State | None:
    if categories & {"historical", "hypothetical"}:
        return None
    if "uncertain" in categories:
        return State.UNCERTAIN
    if "negated" in categories:
        return State.ABSENT
    return State.PRESENT


def _kept_text(lexicon: Lexicon, text: str) -> str:
    """The text without the sections whose mentions are not this exam's findings."""
    marks = list(_HEADING.finditer(text))
    if not marks:
        return text
    kept = [text[:marks[0].start()]]
    for index, mark in enumerate(marks):
        end = marks[index + 1].start() if index + 1 < len(marks) else len(text)
        if mark.group(1).strip().lower() not in lexicon.skip_sections:
            kept.append(text[mark.end():end])
    return "\n".join(kept)


def mentions(text: str, lexicon: Lexicon | None = None) -> list[Mention]:
    """Every finding mention of `text`, with its ConText categories."""
    lexicon = lexicon or default_lexicon()
    found: list[Mention] = []
    for number, sentence in enumerate(_SENTENCE.split(_kept_text(lexicon, text))):
        found += _sentence_mentions(lexicon, sentence, number)
    return found


def extract(text: str, lexicon: Lexicon | None = None) -> dict[str, State]:
    """finding code key -> state, for each finding the text asserts (historical and
    hypothetical mentions assert nothing)."""
    labels: dict[str, State] = {}
    for mention in mentions(text, lexicon):
        if mention.state is None:
            continue
        known = labels.get(mention.finding)
        if known is None or _RANK[mention.state] > _RANK[known]:
            labels[mention.finding] = mention.state
    return labels


def mentions_critical_phrase(text: str, lexicon: Lexicon | None = None) -> bool:
    """True when the text says a critical result was communicated."""
    lexicon = lexicon or default_lexicon()
    flat = " ".join(_WORD.findall(text.lower()))
    return any(" ".join(_WORD.findall(p)) in flat for p in lexicon.critical_phrases)


def labels_rows(ident: str, text: str, lexicon: Lexicon | None = None) -> Iterable[
        tuple[str, str, str]]:
    """(id, finding, state) rows for `radraft eval --labels-only`."""
    for finding, state in sorted(extract(text, lexicon).items()):
        yield ident, finding, state.value
