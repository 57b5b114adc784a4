"""One helper escapes peer values in log lines (issue 25, item 7: a forged log line)."""

from __future__ import annotations

import io
import logging

from radraft.core.log_safe import EscapingFilter, safe


def test_safe_escapes_line_breaks_and_controls() -> None:
    assert safe("1.2.3\n2026-01-01 INFO forged") == "1.2.3\\n2026-01-01 INFO forged"
    assert safe("a\rb\x00c\x1b[31m\u2028") == "a\\rb\\x00c\\x1b[31m\\u2028"
    assert safe("x" * 300, limit=10) == "x" * 10 + "…"


def test_filter_escapes_every_formatted_message() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(EscapingFilter())
    logger = logging.getLogger("radraft.test.log_safe")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("C-STORE %s from %s", "1.2\nERROR forged line", "AE\r\n")
    finally:
        logger.removeHandler(handler)
    assert out.getvalue() == "C-STORE 1.2\\nERROR forged line from AE\\r\\n\n"


def test_exception_text_cannot_start_a_line_of_its_own() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(EscapingFilter())
    logger = logging.getLogger("radraft.test.log_safe.exc")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:  # what pynetdicom logs when it refuses a calling AE title
            raise ValueError("Invalid 'Calling AE Title' value 'AE\r\nINFO forged'")
        except ValueError:
            logger.exception("Unable to decode the received PDU data")
    finally:
        logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[0] == "ERROR Unable to decode the received PDU data"
    assert all(line.startswith("    ") for line in lines[1:]), lines
    assert "\r" not in out.getvalue() and "AE\\r" in out.getvalue()


def test_library_warnings_go_through_the_escaping_filter() -> None:
    """A library's warning quoting a peer's value (pydicom: "Unknown encoding 'ISO_IR
    192\\x08'") is logged escaped, not printed raw to stderr (found by bench.fuzz)."""
    import warnings

    from radraft.core import log_safe

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        log_safe.install()
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("Unknown encoding 'ISO_IR 192\x08'\nFUZZINJ forged", UserWarning,
                          stacklevel=1)
    finally:
        root.removeHandler(handler)
        logging.captureWarnings(False)
    text = out.getvalue()
    assert "\x08" not in text and "\nFUZZINJ" not in text
    assert "ISO_IR 192\\x08" in text
