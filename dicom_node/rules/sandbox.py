"""Check or try a rules text from the console in a child process, never in the server's.

The text comes from a console user. Even with RE2 and anchors refused, parsing YAML and
compiling patterns is the server's interpreter time: a child process with a wall-clock
timeout, a CPU limit and an address-space limit does it instead, so the worst a text can
do is cost that child its life. The rules in force (the admin's file, bounded in size,
RE2, no aliases) are still loaded in the server by the watcher.

Protocol: JSON on stdin {text, timezone, profiles, destinations, facts|null}; JSON on stdout
{ok, rules, outcomes} or {ok: false, error}.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any

from radraft.core.errors import ConfigError
from radraft.core.types import Priority
from radraft.dicom_node.rules.facts import StudyFacts
from radraft.dicom_node.rules.loader import MAX_RULES_BYTES, load_rules
from radraft.dicom_node.rules.model import RuleOutcome

TIMEOUT_S = 20.0  # wall clock, start-up included (a loaded machine starts Python slowly)
CPU_S = 10  # CPU seconds: a valid file needs a fraction of one
MEMORY_BYTES = 1 << 30  # address space of the child: far above what a valid file needs
EDITED = "(edited text)"


@dataclasses.dataclass(frozen=True)
class Checked:
    """A text that loaded: its number of rules and, when facts were given, the outcomes."""

    rules: int
    outcomes: list[RuleOutcome]


class SandboxError(Exception):
    """The text is invalid, too large, or its check ran out of time or memory."""


def _facts_json(facts: StudyFacts) -> dict[str, Any]:
    data = dataclasses.asdict(facts)
    data["modalities"], data["body_parts"] = sorted(facts.modalities), sorted(facts.body_parts)
    data["now"] = facts.now.isoformat()
    return data


def _facts_from(data: dict[str, Any]) -> StudyFacts:
    data = dict(data, modalities=frozenset(data["modalities"]),
                body_parts=frozenset(data["body_parts"]),
                now=datetime.fromisoformat(data["now"]))
    return StudyFacts(**data)


def check_text(
    text: str, *, timezone: str, profiles: Collection[str], destinations: Collection[str],
    facts: StudyFacts | None = None, timeout_s: float = TIMEOUT_S,
) -> Checked:
    """Load `text` (and decide `facts` with it) in a child process; SandboxError says why not."""
    size = len(text.encode("utf-8"))
    if size > MAX_RULES_BYTES:
        raise SandboxError(f"{EDITED}: {size} bytes; a rules file holds at most "
                           f"{MAX_RULES_BYTES}")
    request = json.dumps({"text": text, "timezone": timezone, "profiles": sorted(profiles),
                          "destinations": sorted(destinations),
                          "facts": _facts_json(facts) if facts is not None else None})
    try:
        done = subprocess.run(
            [sys.executable, "-m", "radraft.dicom_node.rules.sandbox"], input=request,
            capture_output=True, text=True, timeout=timeout_s, check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
    except subprocess.TimeoutExpired:
        raise SandboxError(f"{EDITED}: checking the rules took over {timeout_s:g} s; "
                           "refused") from None
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        raise SandboxError(f"{EDITED}: the rules check failed (exit status "
                           f"{done.returncode}: out of memory or time); refused") from None
    if not answer.get("ok"):
        raise SandboxError(str(answer.get("error", "invalid rules")))
    outcomes = [RuleOutcome(rule_name=o["rule_name"], action=o["action"], profile=o["profile"],
                            priority=Priority(o["priority"]) if o["priority"] else None,
                            destinations=tuple(o["destinations"]), reasons=tuple(o["reasons"]))
                for o in answer["outcomes"]]
    return Checked(rules=int(answer["rules"]), outcomes=outcomes)


def _child(request: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="radraft-rules-") as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(request["text"], encoding="utf-8")
        try:
            rules = load_rules(path, timezone=request["timezone"],
                               profiles=request["profiles"],
                               destinations=request["destinations"])
        except ConfigError as exc:
            return {"ok": False, "error": str(exc).replace(str(path), EDITED)}
    outcomes = []
    if request["facts"] is not None:
        for outcome in rules.decide(_facts_from(request["facts"])):
            data = dataclasses.asdict(outcome)
            data["priority"] = outcome.priority.value if outcome.priority else ""
            outcomes.append(data)
    return {"ok": True, "rules": len(rules.rules), "outcomes": outcomes}


def main() -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_S, CPU_S))
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    request = json.loads(sys.stdin.read(4 * MAX_RULES_BYTES + 65536))
    json.dump(_child(request), sys.stdout)


if __name__ == "__main__":
    main()
