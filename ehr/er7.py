"""A small, lenient ER7 (pipe-and-hat) splitter.

hl7apy's strict validation rejects real senders' messages (Z-segments, undefined segments,
fields beyond the 2.x definitions), so inbound HL7 is split by hand: segments on CR/LF, fields
on MSH-1, components/repetitions on MSH-2. Nothing is validated beyond what applying needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from radraft.core.errors import Hl7Error


def decode(raw: bytes) -> str:
    """UTF-8 when it decodes, else Windows-1252, else Latin-1: MSH-18 is not trusted (senders
    declare 8859/1 and send UTF-8, or send Windows "smart quotes" as 8859/1)."""
    for charset in ("utf-8", "cp1252"):
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


@dataclass(frozen=True)
class Message:
    """One ER7 message: segments as lists of raw field strings (MSH-1 is field 1)."""

    segments: list[list[str]]
    component_sep: str = "^"
    repetition_sep: str = "~"
    _by_name: dict[str, list[list[str]]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, list[list[str]]] = {}
        for seg in self.segments:  # applying asks for the same segments many times
            by_name.setdefault(seg[0], []).append(seg)
        object.__setattr__(self, "_by_name", by_name)

    def all(self, name: str) -> list[list[str]]:
        return self._by_name.get(name, [])

    def field(self, seg: list[str] | None, index: int, component: int = 1) -> str:
        """Component `component` of the first repetition of field `index` ('' when absent)."""
        if seg is None or index >= len(seg):
            return ""
        value = seg[index].split(self.repetition_sep)[0]
        parts = value.split(self.component_sep)
        if component > len(parts) or parts[component - 1] == '""':  # "" is HL7's explicit null
            return ""
        return unescape(parts[component - 1])

    def first(self, name: str) -> list[str] | None:
        found = self.all(name)
        return found[0] if found else None

    def get(self, name: str, index: int, component: int = 1) -> str:
        return self.field(self.first(name), index, component)

    @property
    def message_type(self) -> str:
        event = self.get("MSH", 9, 2)
        return self.get("MSH", 9, 1) + (f"^{event}" if event else "")


_ESCAPES = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\", ".br": "\n", "H": "", "N": ""}
_ESCAPE = re.compile(r"\\(F|S|T|R|E|\.br|H|N|X[0-9A-Fa-f]*|\.sp\d*|\.in[+-]?\d*)\\")


def _escaped(found: re.Match[str]) -> str:
    code = found.group(1)
    if code in _ESCAPES:
        return _ESCAPES[code]
    if code.startswith("X"):  # hexadecimal data: the bytes, decoded like the message
        try:
            return decode(bytes.fromhex(code[1:]))
        except ValueError:
            return found.group(0)
    return "\n" if code.startswith(".sp") else " "


def unescape(value: str) -> str:
    """The escapes of v2.5 §2.7: separators, \\.br\\ and \\.sp\\ (line breaks), \\Xhh\\ (hex);
    highlighting (\\H\\ \\N\\) is dropped. One left-to-right pass: "\\E\\F\\" is "\\F\\"."""
    if "\\" not in value:
        return value
    return _ESCAPE.sub(_escaped, value)


def parse(raw: bytes) -> Message:
    """Split one message; raises Hl7Error (AR) when there is no usable MSH."""
    text = decode(raw).lstrip("\ufeff")
    lines = [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
             if line.strip()]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise Hl7Error("message does not start with an MSH segment", code="100", reject=True)
    sep = lines[0][3]
    encoding = lines[0][4:8]
    segments: list[list[str]] = []
    for number, line in enumerate(lines, start=1):
        parts = line.split(sep)
        if len(parts[0]) != 3:
            raise Hl7Error(f"segment {number} has no 3-character name: {parts[0][:10]!r}",
                           segment=parts[0][:3], position=number, code="100")
        if parts[0] == "MSH":
            parts = ["MSH", sep, *parts[1:]]
        segments.append(parts)
    return Message(segments, component_sep=encoding[0], repetition_sep=encoding[1])


def split_batch(raw: bytes) -> list[bytes]:
    """Messages of a batch file (FHS/BHS...BTS/FTS) or a single message, as bytes."""
    text = raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    messages: list[bytes] = []
    current: list[bytes] = []
    for line in text.split(b"\r"):
        if line[:3] in (b"FHS", b"BHS", b"BTS", b"FTS") or not line.strip():
            continue
        if line.startswith(b"MSH") and current:
            messages.append(b"\r".join(current) + b"\r")
            current = []
        current.append(line)
    if current:
        messages.append(b"\r".join(current) + b"\r")
    return messages
