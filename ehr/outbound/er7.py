"""ER7 details: escaping of delimiter characters, time stamps, character sets."""

from __future__ import annotations

import textwrap
from datetime import datetime
from zoneinfo import ZoneInfo

from radraft.core.errors import OutputBuildError

# HL7 v2.5.1 2.7: the escape character first, so escapes are not escaped again.
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))

# MSH-18 (HL7 table 0211) -> Python codec. Empty: the default, 7-bit ASCII.
CHARSETS = {
    "": "ascii",
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
}


def escape(text: str) -> str:
    """One ER7 component value: delimiters escaped, control characters made spaces."""
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return "".join(" " if ord(ch) < 32 else ch for ch in text)


def components(*values: str) -> str:
    """Components joined with ^, each escaped, trailing empty ones dropped."""
    parts = [escape(v) for v in values]
    while parts and not parts[-1]:
        parts.pop()
    return "^".join(parts)


# OBX-5 holds at most 199 characters at hl7apy's STRICT level (it checks it as ST).
LINE_LENGTH = 199


def lines(text: str, limit: int = LINE_LENGTH) -> list[str]:
    """Non-empty lines of a text, long ones wrapped at spaces so each escaped line fits."""
    out: list[str] = []
    for line in text.splitlines():
        pending = textwrap.wrap(line.strip(), width=limit, break_on_hyphens=False)
        while pending:
            chunk = pending.pop(0)
            if len(escape(chunk)) <= limit:
                out.append(chunk)
                continue
            # Delimiters expand threefold when escaped: wrap this chunk narrower.
            narrower = textwrap.wrap(chunk, width=max(1, len(chunk) * 2 // 3),
                                     break_on_hyphens=False)
            pending[:0] = narrower
    return out


def hl7_timestamp(moment: datetime, timezone: str) -> str:
    """DTM with seconds and the site's UTC offset: YYYYMMDDHHMMSS+ZZZZ."""
    if moment.tzinfo is None:
        raise OutputBuildError("HL7 time stamps need a timezone-aware time")
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y%m%d%H%M%S%z")


def encode(er7: str, charset: str) -> bytes:
    """The message in the destination's character set (MSH-18).

    Characters the charset cannot carry become "?" (a RIS configured for ASCII still gets
    a message it can parse; the SR keeps the exact text).
    """
    codec = CHARSETS.get(charset)
    if codec is None:
        raise OutputBuildError(
            f"destination charset {charset!r} is not supported (one of {sorted(CHARSETS)})"
        )
    return er7.encode(codec, errors="replace")
