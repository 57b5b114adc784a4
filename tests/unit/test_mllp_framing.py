"""MLLP de-framing, ER7 escapes and charsets, intake decisions (no network, no database)."""

from __future__ import annotations

from radraft.ehr.er7 import decode, parse, unescape
from radraft.ehr.framing import Deframer, Frame, Oversize, Truncated, Violation
from radraft.ehr.intake import error_from_text, error_text, intake
from radraft.ehr.mllp import build_ack, escape

MSG = b"MSH|^~\\&|A|B|C|D|20260101||ADT^A08|X1|P|2.5.1\rPID|1||P1^^^H\r"
IDS = frozenset({"P", "D"})


def test_frames_split_across_reads_and_several_per_read() -> None:
    deframer = Deframer(1000)
    stream = b"\r\n\x0b" + MSG + b"\x1c\r\x0b" + MSG + b"\x1c\r"
    events = [e for i in range(0, len(stream), 7) for e in deframer.feed(stream[i:i + 7])]
    assert events == [Frame(MSG), Frame(MSG)] and not deframer.in_frame


def test_truncated_oversize_and_violations() -> None:
    deframer = Deframer(100)
    assert deframer.feed(b"\x0bMSH|half\x0b" + MSG[:20]) == [Truncated(8)]
    assert deframer.in_frame
    events = deframer.feed(b"x" * 200 + b"\x1c\r\x0bMSH|ok\x1c\r")
    assert isinstance(events[0], Oversize) and events[0].head.startswith(b"MSH|^~\\&|A")
    assert events[1:] == [Frame(b"MSH|ok")]  # the oversize frame is skipped, not answered twice
    assert Deframer(100).feed(b"GET / HTTP/1.1") == [Violation("byte 0x47 outside an MLLP frame")]


def test_escapes_nulls_and_lying_charsets() -> None:
    assert unescape("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f\\.br\\g") == "a|b^c&d~e\\f\ng"
    assert unescape("\\E\\F\\") == "\\F\\"  # one pass: an escaped escape stays an escape
    assert unescape("\\X4142\\") == "AB" and unescape("C:\\dir") == "C:\\dir"
    assert escape("a|b^c&d~e\\f") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
    assert decode("12 \u2013 35".encode()) == "12 \u2013 35"  # UTF-8 declared as 8859/1
    assert decode(b"\x93quoted\x94") == "\u201cquoted\u201d"  # Windows-1252
    assert decode(b"caf\xe9\x81") == "caf\xe9\x81"  # neither: Latin-1
    msg = parse(b"MSH|^~\\&|A\rOBX|1|NM|X||\"\"|mg~g\r")
    assert msg.get("OBX", 5) == "" and msg.get("OBX", 6) == "mg"  # "" is null; first repetition


def test_intake_decisions_and_stored_errors() -> None:
    assert intake(MSG, processing_ids=IDS).code == ""
    cases = {b"ADT^A08": ("AR", "201", b"ADT^A99"), b"|P|": ("AR", "202", b"|T|"),
             b"2.5.1": ("AR", "203", b"2.7"), b"|X1|": ("AE", "101", b"||")}
    for old, (code, err, new) in cases.items():
        decided = intake(MSG.replace(old, new), processing_ids=IDS)
        assert (decided.code, decided.error.code if decided.error else "") == (code, err), old
    garbage = intake(b"\x00\x01junk", processing_ids=IDS)
    assert garbage.msg is None and garbage.code == "AR" and garbage.error is not None
    error = intake(MSG.replace(b"|X1|", b"||"), processing_ids=IDS).error
    assert error is not None
    again = error_from_text(error_text(error), reject=False)
    assert again is not None and (again.segment, again.field, again.code, again.reason) == (
        "MSH", 10, "101", error.reason)
    ack = build_ack(parse(MSG), "AE", again).decode()
    assert "MSA|AE|X1|" in ack and "ERR|MSH^1^10^101&" in ack and "|MSH^1^10|101^" in ack
