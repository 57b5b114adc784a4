"""Peer values in log lines: control characters escaped, so no sender can forge a line.

A Study Instance UID, an MSH-10 or a calling AE title comes from a machine radraft does not
control; written raw, a CR/LF in it starts a new, fake log line. `safe` escapes one value;
`install` puts `EscapingFilter` on the root handlers so every formatted message (whatever the
call site passed) has its control characters escaped before it is written.
"""

from __future__ import annotations

import logging
import re

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators some log viewers honour.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")


def _escape(found: re.Match[str]) -> str:
    char = found.group(0)
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{ord(char):02x}"
                                                        if ord(char) < 256
                                                        else f"\\u{ord(char):04x}")


def safe(value: object, limit: int = 200) -> str:
    """`value` as one printable line: control characters escaped, cut to `limit` characters."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return _CONTROL.sub(_escape, text)


class EscapingFilter(logging.Filter):
    """Rewrites a record's message to its escaped form (tracebacks are left as they are:
    they are formatted after this, by the handler's formatter, from radraft's own code)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        escaped = _CONTROL.sub(_escape, message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


def install() -> None:
    """Escape every message written by the root logger's handlers (call after basicConfig)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, EscapingFilter) for f in handler.filters):
            handler.addFilter(EscapingFilter())
