"""HL7 inputs for the fuzzer: a real message, mutated (bytes, segments, delimiters, hostile
MSH-10, huge fields, encodings) and framed (or misframed) for MLLP."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from bench.fuzz.mutate_dicom import MARKER

START, END = b"\x0b", b"\x1c\r"


def _segments(message: bytes) -> list[bytes]:
    return [s for s in message.split(b"\r") if s]


def _join(segments: list[bytes]) -> bytes:
    return b"\r".join(segments) + b"\r"


def flip(rng: random.Random, message: bytes) -> bytes:
    out = bytearray(message)
    for _ in range(rng.randint(1, 12)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def truncate(rng: random.Random, message: bytes) -> bytes:
    return message[:rng.randrange(len(message))] if message else message


def control_id(rng: random.Random, message: bytes) -> bytes:
    """A hostile MSH-10 (log injection, delimiters, length)."""
    segments = _segments(message)
    fields = segments[0].split(b"|")
    if len(fields) > 9:
        fields[9] = rng.choice([f"X\n{MARKER} forged", f"\x1b[2J{MARKER}", "Z" * 5000,
                                f"\u2028{MARKER}", "\x00\x01\x02", "../../x", ""]
                               ).encode("utf-8")
    segments[0] = b"|".join(fields)
    return _join(segments)


def delimiters(rng: random.Random, message: bytes) -> bytes:
    if len(message) < 8:
        return message
    choice = rng.randrange(3)
    if choice == 0:  # another field separator
        return message[:3] + bytes([rng.randrange(256)]) + message[4:]
    if choice == 1:  # encoding characters
        return message[:4] + rng.randbytes(4) + message[8:]
    return message.replace(b"^", b"|")


def segment_storm(rng: random.Random, message: bytes) -> bytes:
    segments = _segments(message)
    chosen = rng.choice(segments)
    count = min(rng.choice([10, 500, 5000]), MAX_MESSAGE // (len(chosen) + 1) + 1)
    return _join(segments + [chosen] * count)


def huge_field(rng: random.Random, message: bytes) -> bytes:
    segments = _segments(message)
    index = rng.randrange(len(segments))
    segments[index] += b"|" + b"A" * rng.choice([1000, 100_000, 2_000_000])
    return _join(segments)


def drop_segment(rng: random.Random, message: bytes) -> bytes:
    segments = _segments(message)
    if len(segments) > 1:
        del segments[rng.randrange(len(segments))]
    return _join(segments)


def encoding(rng: random.Random, message: bytes) -> bytes:
    choice = rng.randrange(3)
    if choice == 0:
        return message.replace(b"\r", b"\n")
    if choice == 1:
        return message.replace(b"\r", b"\r\n")
    return message + rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", "é".encode()])


MESSAGE_OPS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "flip": flip, "truncate": truncate, "msh10": control_id, "delimiters": delimiters,
    "storm": segment_storm, "huge": huge_field, "drop": drop_segment, "encoding": encoding,
}
FRAMING = ["plain", "plain", "plain", "no_start", "no_end", "inner_start", "inner_end",
           "two_frames", "batch", "empty", "junk_before"]


@dataclass
class Hl7Case:
    stream: bytes
    label: str


# Ops compose (a 2 MB field in a segment stormed 5,000 times would be 10 GB): every step
# is cut to this, which is still twice hl7.max_message_bytes' default.
MAX_MESSAGE = 2 << 20


def build_case(message: bytes, ops: list[tuple[str, int]], framing: int,
               max_batch: int) -> Hl7Case:
    for name, op_seed in ops:
        if not _segments(message):
            break  # truncated to nothing: send what is left
        message = MESSAGE_OPS[name](random.Random(op_seed), message)[:MAX_MESSAGE]
    rng = random.Random(framing)
    how = FRAMING[framing % len(FRAMING)]
    if how == "no_start":
        stream = message + END
    elif how == "no_end":
        stream = START + message
    elif how == "inner_start":
        at = rng.randrange(len(message) + 1)
        stream = START + message[:at] + START + message[at:] + END
    elif how == "inner_end":
        at = rng.randrange(len(message) + 1)
        stream = START + message[:at] + END + message[at:] + END
    elif how == "two_frames":
        stream = START + message + END + START + message + END
    elif how == "batch":
        count = rng.choice([2, 50, max_batch + 1])
        body = (message * count)[:4 * MAX_MESSAGE]
        stream = (START + b"FHS|^~\\&|FUZZ\rBHS|^~\\&|FUZZ\r" + body
                  + f"BTS|{count}\rFTS|1\r".encode() + END)
    elif how == "empty":
        stream = START + END
    elif how == "junk_before":
        stream = rng.randbytes(rng.choice([1, 100])) + START + message + END
    else:
        stream = START + message + END
    return Hl7Case(stream, "+".join([n for n, _ in ops] + [how]))


def classify(answer: bytes, ended: str) -> str:
    codes = [answer[i + 4:i + 6].decode("latin-1")
             for i in range(len(answer)) if answer.startswith(b"MSA|", i)]
    parts = sorted(set(f"ack-{c}" for c in codes))
    if not codes:
        parts.append("closed-silently" if ended == "closed" else "no-answer")
    if ended == "timeout":
        parts.append("hang")
    return "+".join(parts)
