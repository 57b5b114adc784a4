"""Rule regular expressions on RE2: matching time is linear in the text, whatever the pattern.

Python's `re` backtracks: a pattern such as `^(([A-Z]+)*\\s?)*$!` against a 40-character study
description runs for hours and holds the interpreter (the GIL) with it — DICOM C-ECHO and HL7
ACKs of the same process stall. RE2 has no backtracking (and so no backreferences or
look-around: such a pattern is refused with RE2's reason). Patterns are also bounded in length
and in compiled size.
"""

from __future__ import annotations

from typing import Any, Protocol

import re2

MAX_PATTERN_CHARS = 512
# RE2's memory budget for one compiled pattern (its default is 8 MiB); a pattern over it is
# refused at load, not truncated.
MAX_PATTERN_MEMORY = 1 << 20


class Pattern(Protocol):
    """What rules use of a compiled pattern (re2's and re's share it)."""

    @property
    def pattern(self) -> str: ...

    def search(self, text: str) -> Any: ...


def compile_pattern(text: str) -> Pattern:
    """`text` compiled by RE2; ValueError with the reason when it is too long or invalid."""
    if len(text) > MAX_PATTERN_CHARS:
        raise ValueError(f"regular expression of {len(text)} characters "
                         f"(at most {MAX_PATTERN_CHARS})")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PATTERN_MEMORY
    try:
        compiled: Pattern = re2.compile(text, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(f"invalid regular expression (RE2 syntax, no backreferences or "
                         f"look-around): {reason}") from None
    return compiled
