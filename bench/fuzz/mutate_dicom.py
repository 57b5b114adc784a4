"""DICOM inputs for the fuzzer: a real sample, mutated at the data-set layer (byte flips,
truncations, length fields, VR confusion, hostile UIDs and strings, nested sequences,
deflate) and at the PDU layer (PDU/PDV lengths, association request, unknown PDUs, order,
fragmentation, stalls). Every choice comes from the seeded `random.Random` of one op."""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from bench.fuzz import dicom_ul as ul
from bench.fuzz.corpus import DicomSample

MARKER = "FUZZINJ"  # in every hostile string: found at a log line's start = injected
DEFLATE = "1.2.840.10008.1.2.1.99"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"}
_VRS = [b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT",
        b"OB", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"TM", b"UI", b"UL", b"UN",
        b"US", b"UT", b"ZZ", b"\x00\x00"]
HOSTILE_UIDS = ["../..", "../../fuzz-escape", "/tmp/fuzz-escape", f"1.2.3\n{MARKER} forged",
                "1." + "2" * 80, "", "1.2.3/../../fuzz-escape", "1.2.3\x00x", "1.2.3\r\n",
                "\u2028" + MARKER, "1.2.840.10008." + "9" * 49, "1..2", "01.2"]


@dataclass(frozen=True)
class Element:
    tag: tuple[int, int]
    vr: bytes
    length_at: int
    length_size: int
    value_at: int
    length: int


def elements(sample: DicomSample, data: bytes) -> list[Element]:
    """Top-level elements (stops at the first undefined length or inconsistency)."""
    found: list[Element] = []
    order = "<" if sample.little else ">"
    offset = 0
    while offset + 8 <= len(data):
        group, elem = struct.unpack(order + "HH", data[offset:offset + 4])
        vr = b""
        if sample.explicit:
            vr = data[offset + 4:offset + 6]
            if vr in _LONG_VRS:
                if offset + 12 > len(data):
                    break
                length_at, size, value_at = offset + 8, 4, offset + 12
            else:
                length_at, size, value_at = offset + 6, 2, offset + 8
        else:
            length_at, size, value_at = offset + 4, 4, offset + 8
        fmt = order + ("I" if size == 4 else "H")
        length = struct.unpack(fmt, data[length_at:length_at + size])[0]
        found.append(Element((group, elem), vr, length_at, size, value_at, length))
        if length == 0xFFFFFFFF or value_at + length > len(data):
            break
        offset = value_at + length
    return found


def _set_value(sample: DicomSample, data: bytes, tag: tuple[int, int], value: bytes) -> bytes:
    for element in elements(sample, data):
        if element.tag == tag and element.length != 0xFFFFFFFF:
            if len(value) % 2:
                value += b"\x00"
            size = element.length_size
            limit = 0xFFFF if size == 2 else 0xFFFFFFFF
            value = value[:limit]
            order = "<" if sample.little else ">"
            length = struct.pack(order + ("I" if size == 4 else "H"), len(value))
            return (data[:element.length_at] + length + data[element.length_at + size:
                                                             element.value_at]
                    + value + data[element.value_at + element.length:])
    return data


def _inflated(sample: DicomSample) -> bytes:
    if sample.transfer_syntax != DEFLATE:
        return sample.dataset
    try:
        return zlib.decompress(sample.dataset, -15)
    except zlib.error:
        return sample.dataset


def _view(sample: DicomSample) -> DicomSample:
    """The sample as the data set its syntax describes after inflation."""
    if sample.transfer_syntax != DEFLATE:
        return sample
    return DicomSample(sample.name, EXPLICIT_LE, sample.sop_class, sample.sop_instance,
                       _inflated(sample))


def _deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


# --- data-set layer ------------------------------------------------------------------------
def flip(rng: random.Random, sample: DicomSample, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        if out:
            out[rng.randrange(len(out))] ^= rng.randint(1, 255)
    return bytes(out)


def truncate(rng: random.Random, sample: DicomSample, data: bytes) -> bytes:
    return data[:rng.randrange(len(data))] if data else data


def length_field(rng: random.Random, sample: DicomSample, data: bytes) -> bytes:
    found = elements(_view(sample), data)
    if not found:
        return flip(rng, sample, data)
    element = rng.choice(found)
    size = element.length_size
    hostile = rng.choice([0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x20000000, 0, 1,
                          element.length + 1, element.length * 1000 + 3])
    hostile &= 0xFFFF if size == 2 else 0xFFFFFFFF
    order = "<" if sample.little else ">"
    packed = struct.pack(order + ("I" if size == 4 else "H"), hostile)
    return data[:element.length_at] + packed + data[element.length_at + size:]


def vr_confusion(rng: random.Random, sample: DicomSample, data: bytes) -> bytes:
    found = [e for e in elements(_view(sample), data) if e.vr]
    if not found:
        return flip(rng, sample, data)
    element = rng.choice(found)
    at = element.length_at - (4 if element.length_size == 4 else 2)  # tag(4) VR(2) ...
    return data[:at] + rng.choice(_VRS) + data[at + 2:]


def hostile_uid(rng: random.Random, sample: DicomSample, data: bytes) -> bytes:
    tag = rng.choice([(0x0020, 0x000D), (0x0020, 0x000E), (0x0008, 0x0018)])
    value = rng.choice(HOSTILE_UIDS).encode("utf-8")
    return _set_value(_view(sample), data, tag, value)


def hostile_text(rng: random.Random, sample: DicomSample, data: bytes) -> bytes:
    tag = rng.choice([(0x0010, 0x0010), (0x0008, 0x1030), (0x0008, 0x0050),
                      (0x0010, 0x0020), (0x0008, 0x0060), (0x0018, 0x0015)])
    value = rng.choice([f"X\r\n{MARKER} forged line", "\x1b[2J" + MARKER, "A" * 70000,
                        "\u2028" + MARKER, "é" * 1000, "\x00" * 64, "../" * 30])
    return _set_value(_view(sample), data, tag, value.encode("utf-8"))


def nested_sequence(rng: random.Random, sample: DicomSample, data: bytes) -> bytes:
    """Deeply nested sequences of undefined length, closed or not, before Pixel Data."""
    view = _view(sample)
    order = "<" if view.little else ">"
    depth = rng.choice([50, 500, 5000, 50000])
    tag = struct.pack(order + "HH", 0x0040, 0xA730)
    head = tag + (b"SQ\x00\x00" if view.explicit else b"") + b"\xff\xff\xff\xff"
    item = struct.pack(order + "HH", 0xFFFE, 0xE000) + b"\xff\xff\xff\xff"
    item_end = struct.pack(order + "HHI", 0xFFFE, 0xE00D, 0)
    seq_end = struct.pack(order + "HHI", 0xFFFE, 0xE0DD, 0)
    body = (item + head) * depth
    if rng.random() < 0.5:
        body += (item_end + seq_end) * depth
    block = head + body + (item_end + seq_end if rng.random() < 0.5 else b"")
    pixels = struct.pack(order + "HH", 0x7FE0, 0x0010)
    cut = data.find(pixels)
    cut = cut if cut >= 0 else len(data)
    return data[:cut] + block + data[cut:]


def insert(rng: random.Random, sample: DicomSample, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.randbytes(rng.choice([1, 7, 64, 4096])) + data[at:]


def duplicate(rng: random.Random, sample: DicomSample, data: bytes) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    chunk = data[start:start + rng.choice([8, 64, 1024])]
    return data[:start] + chunk * rng.choice([2, 10, 200]) + data[start:]


DATASET_OPS: dict[str, Callable[[random.Random, DicomSample, bytes], bytes]] = {
    "flip": flip, "truncate": truncate, "length": length_field, "vr": vr_confusion,
    "uid": hostile_uid, "text": hostile_text, "nested": nested_sequence, "insert": insert,
    "duplicate": duplicate,
}


def deflate_bomb(rng: random.Random, inflated_mb: int) -> bytes:
    """A data set that inflates to `inflated_mb` MiB of zeros in one OB element."""
    size = inflated_mb << 20
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = struct.pack("<HH", 0x0009, 0x0010) + b"LO\x04\x00FUZZ"
    head += struct.pack("<HH", 0x0009, 0x1010) + b"OB\x00\x00" + struct.pack("<I", size)
    out = packer.compress(head)
    zeros = bytes(1 << 20)
    for _ in range(inflated_mb):
        out += packer.compress(zeros)
    return out + packer.flush()


# Ops compose (duplications of duplications): every step is cut to this.
MAX_DATASET = 8 << 20


@dataclass
class DicomCase:
    """One DICOM input: the byte stream and how to send it."""

    stream: bytes
    # Never for DICOM streams: pynetdicom aborts on the end of the stream before it has
    # handled what came with it; a truncated input waits for the server's timeout instead.
    half_close: bool = False
    label: str = ""


def build_case(sample: DicomSample, ops: list[tuple[str, int]]) -> DicomCase:
    """The stream for `sample` after the mutation program `ops` [(op name, op seed)]."""
    syntax = sample.transfer_syntax
    data = _inflated(sample)
    stream_ops: list[tuple[str, random.Random]] = []
    for name, op_seed in ops:
        rng = random.Random(op_seed)
        if name in DATASET_OPS:
            data = DATASET_OPS[name](rng, sample, data)[:MAX_DATASET]
        elif name == "bomb":
            # Sized to be seen (memory over the 200 MB threshold when nothing caps it).
            syntax, data = DEFLATE, b""
            stream_ops.append(("bomb", rng))
        elif name == "syntax":
            syntax = rng.choice([DEFLATE, EXPLICIT_LE, "1.2.840.10008.1.2",
                                 "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.4.50"])
        else:
            stream_ops.append((name, rng))
    if sample.transfer_syntax == DEFLATE and syntax == DEFLATE and data:
        data = _deflate(data)
    for name, rng in stream_ops:
        if name == "bomb":
            data = deflate_bomb(rng, rng.choice([64, 256, 300]))
    rq = ul.associate_rq("RADRAFT", "FUZZER", [(1, sample.sop_class, [syntax]),
                                               (3, ul.VERIFICATION, [ul.IMPLICIT_LE])])
    command = ul.c_store_rq(7, sample.sop_class, sample.sop_instance)
    parts = [rq, ul.p_data(1, command, is_command=True), ul.p_data(1, data, is_command=False),
             ul.RELEASE_RQ]
    case = DicomCase(b"".join(parts), label="+".join(n for n, _ in ops))
    for name, rng in stream_ops:
        if name in PDU_OPS:
            PDU_OPS[name](rng, case, parts)
    return case


# --- PDU layer -----------------------------------------------------------------------------
def _join(case: DicomCase, parts: list[bytes]) -> None:
    case.stream = b"".join(parts)


def pdu_length(rng: random.Random, case: DicomCase, parts: list[bytes]) -> None:
    index = rng.randrange(len(parts))
    part = bytearray(parts[index])
    hostile = rng.choice([0xFFFFFFFF, 0x20000000, 0x7FFFFFFF, 0, 1, len(part) + 100,
                          max(len(part) - 10, 0)])
    part[2:6] = struct.pack(">I", hostile)
    parts[index] = bytes(part)
    _join(case, parts)


def pdv_length(rng: random.Random, case: DicomCase, parts: list[bytes]) -> None:
    index = rng.choice([1, 2])
    part = bytearray(parts[index])
    if len(part) >= 10:
        part[6:10] = struct.pack(">I", rng.choice([0, 1, 0xFFFFFFFF, 0x20000000,
                                                   len(part) * 2]))
    parts[index] = bytes(part)
    _join(case, parts)


def associate_request(rng: random.Random, case: DicomCase, parts: list[bytes]) -> None:
    choice = rng.randrange(4)
    if choice == 0:
        parts[0] = flip(rng, None, parts[0])  # type: ignore[arg-type]
    elif choice == 1:  # hostile AE titles
        parts[0] = ul.associate_rq(rng.choice(["RADRAFT", f"\n{MARKER}", "\x00" * 16]),
                                   rng.choice([f"AE\r\n{MARKER}", "\x1b[2J", " " * 16]),
                                   [(1, ul.VERIFICATION, [ul.IMPLICIT_LE])])
    elif choice == 2:  # very many presentation contexts
        count = rng.choice([128, 255, 2000])
        parts[0] = ul.associate_rq("RADRAFT", "FUZZER", [
            ((2 * n + 1) & 0xFF, f"1.2.3.{n}", [ul.IMPLICIT_LE] * 4) for n in range(count)])
    else:  # item length larger than the PDU
        part = bytearray(parts[0])
        part[74 + 2:74 + 4] = struct.pack(">H", rng.choice([0xFFFF, 0x1000]))
        parts[0] = bytes(part)
    _join(case, parts)


def unknown_pdu(rng: random.Random, case: DicomCase, parts: list[bytes]) -> None:
    kind = rng.choice([0x00, 0x08, 0x0A, 0x7F, 0xFF])
    body = rng.randbytes(rng.choice([0, 4, 100]))
    parts.insert(rng.randrange(len(parts) + 1), struct.pack(">BBI", kind, 0, len(body)) + body)
    _join(case, parts)


def reorder(rng: random.Random, case: DicomCase, parts: list[bytes]) -> None:
    choice = rng.randrange(4)
    if choice == 0:
        parts[1], parts[2] = parts[2], parts[1]  # data set before command
    elif choice == 1:
        parts.insert(2, ul.RELEASE_RQ)  # release in the middle
    elif choice == 2:
        parts.insert(2, ul.ABORT)
    else:
        parts.insert(1, parts[0])  # a second association request
    _join(case, parts)


def fragment(rng: random.Random, case: DicomCase, parts: list[bytes]) -> None:
    """The data set in tiny PDVs (1 to 16 bytes), or as a command, or never last."""
    body = _payload(parts[2])
    choice = rng.randrange(3)
    if choice == 0:
        parts[2] = ul.p_data(1, body[:60000], is_command=False,
                             fragment=rng.choice([1, 2, 16]))
    elif choice == 1:
        parts[2] = ul.p_data(1, body, is_command=True)
    else:
        parts[2] = ul.p_data(1, body, is_command=False, last=False)
    _join(case, parts)


def stall(rng: random.Random, case: DicomCase, parts: list[bytes]) -> None:
    """Declare a large P-DATA-TF, send a little of it, and keep the connection open: the
    server must time out."""
    declared = rng.choice([0x20000000, 0x7FFFFFFF, 1 << 24])
    head = parts[0] + parts[1] + struct.pack(">BBI", 0x04, 0, declared)
    case.stream = head + rng.randbytes(rng.choice([0, 6, 1000]))


def _payload(pdus: bytes) -> bytes:
    out = b""
    offset = 0
    while offset + 6 <= len(pdus):
        length = struct.unpack(">I", pdus[offset + 2:offset + 6])[0]
        pdv = pdus[offset + 6:offset + 6 + length]
        out += pdv[6:]
        offset += 6 + length
    return out


PDU_OPS: dict[str, Callable[[random.Random, DicomCase, list[bytes]], None]] = {
    "pdu_length": pdu_length, "pdv_length": pdv_length, "rq": associate_request,
    "unknown_pdu": unknown_pdu, "reorder": reorder, "fragment": fragment, "stall": stall,
}
# How often each op is drawn (stalls cost a server timeout each, bombs hundreds of MB).
OP_WEIGHTS = {**{name: 10 for name in DATASET_OPS}, **{name: 6 for name in PDU_OPS},
              "syntax": 4, "stall": 1, "bomb": 1, "uid": 14, "text": 8}
