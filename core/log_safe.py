"""Peer values in log lines: control characters escaped, so no sender can forge a line.

A Study Instance UID, an MSH-10 or a calling AE title comes from a machine radraft does not
control; written raw, a CR/LF in it starts a new, fake log line. `safe` escapes one value;
`install` puts `EscapingFilter` on the root handlers so every formatted message (whatever the
call site passed) has its control characters escaped before it is written.
"""

from __future__ import annotations

import logging
import re
import threading

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


_CONTROL_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u0085]")
_FORMATTER = logging.Formatter()


class EscapingFilter(logging.Filter):
    """Rewrites a record's message to its escaped form. A traceback keeps its line breaks,
    but an exception's text is a peer's value as often as not (a library quoting the AE
    title it refused): its other control characters are escaped and every continuation
    line is indented, so no line of it can pass for a record of its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "radraft_escaped", False):
            return True  # another handler's filter did it already
        record.radraft_escaped = True
        message = record.getMessage()
        escaped = _CONTROL.sub(_escape, message)
        if escaped != message:
            record.msg, record.args = escaped, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        for name in ("exc_text", "stack_info"):
            text = getattr(record, name)
            if text:
                text = _CONTROL_BUT_NEWLINE.sub(_escape, text)
                setattr(record, name, "    " + text.replace("\n", "\n    "))
        return True


def _thread_died(args: threading.ExceptHookArgs) -> None:
    # A library thread's uncaught exception (pynetdicom's reactor on a protocol violation)
    # goes through logging, escaped, instead of raw to stderr.
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    thread = args.thread.name if args.thread is not None else "?"
    logging.getLogger("radraft.thread").error(
        "thread %s ended by an uncaught exception", thread,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def install() -> None:
    """Escape every message written by the root logger's handlers (call after basicConfig),
    log uncaught exceptions of threads the same way, and send Python warnings through
    logging too: a library's warning quotes peer values as well (pydicom's "Unknown encoding
    'ISO_IR 192\\x08'"), and warnings.showwarning would write them raw to stderr."""
    logging.captureWarnings(True)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, EscapingFilter) for f in handler.filters):
            handler.addFilter(EscapingFilter())
    threading.excepthook = _thread_died
