"""`python -m bench.fuzz.seeds`: (re)write the regression seeds in tests/data/fuzz/ — one
byte stream per defect issue 25 found at the doors, replayed first by every fuzz run."""

from __future__ import annotations

import random
import struct

from bench.fuzz import dicom_ul as ul
from bench.fuzz import mutate_dicom as md
from bench.fuzz.corpus import SEEDS, dicom_samples


def _store(sample: md.DicomSample, data: bytes, syntax: str | None = None,
           calling: str = "FUZZER") -> bytes:
    rq = ul.associate_rq("RADRAFT", calling, [(1, sample.sop_class,
                                               [syntax or sample.transfer_syntax])])
    return (rq + ul.p_data(1, ul.c_store_rq(1, sample.sop_class, sample.sop_instance),
                           is_command=True)
            + ul.p_data(1, data, is_command=False) + ul.RELEASE_RQ)


def dicom_seeds() -> dict[str, bytes]:
    ct = next(s for s in dicom_samples() if s.name.endswith("CT_small.dcm"))
    view = md._view(ct)
    rq = ul.associate_rq("RADRAFT", "FUZZER", [(1, ct.sop_class, [ct.transfer_syntax])])

    def uid(tag: tuple[int, int], value: str) -> bytes:
        return _store(ct, md._set_value(view, ct.dataset, tag, value.encode()))

    return {
        # Item 1: six bytes declaring a 512 MiB PDU, then silence (memory, no read timeout).
        "pdu-declares-512mib.bin": rq + struct.pack(">BBI", 0x04, 0, 0x20000000) + b"\0" * 6,
        # Item 1: 1 KiB of deflate that inflates to 256 MiB.
        "deflate-bomb-256mib.bin": _store(ct, md.deflate_bomb(random.Random(0), 256),
                                          md.DEFLATE),
        # Item 2: a study UID that is a path.
        "study-uid-traversal.bin": uid((0x0020, 0x000D), "../../fuzz-escape"),
        "study-uid-absolute.bin": uid((0x0020, 0x000D), "/tmp/fuzz-escape"),
        # Item 4: UIDs over 64 characters (two studies sharing a prefix became one).
        "study-uid-65-chars.bin": uid((0x0020, 0x000D), "1.2.826.0.1." + "7" * 53),
        # Item 7: a forged log line through a UID and through the calling AE title.
        "sop-uid-log-injection.bin": uid((0x0008, 0x0018), f"1.2.3\n{md.MARKER} forged"),
        "calling-ae-crlf.bin": ul.associate_rq("RADRAFT", f"AE\r\n{md.MARKER}",
                                               [(1, ul.VERIFICATION, [ul.IMPLICIT_LE])]),
        # Deep nesting of undefined-length sequences.
        "nested-sequences-5000.bin": _store(ct, md.nested_sequence(random.Random(3), ct,
                                                                   view.dataset)),
    }


def hl7_seeds() -> dict[str, bytes]:
    head = b"MSH|^~\\&|LAB|HOSP|RADRAFT|HOSP|20260101120000||ADT^A08^ADT_A01|"
    tail = b"|P|2.5.1\rEVN|A08|20260101120000\rPID|1||FZ-1^^^HOSP^MR||Seed^Sam\r"
    batch = b"".join(head + f"B{n}".encode() + tail for n in range(1001))
    return {
        # Item 7: MSH-10 forging a log line (Unicode line separator, terminal escapes).
        "msh10-log-injection.bin": b"\x0b" + head + f"X\u2028{md.MARKER}\x1b[2J".encode()
        + tail + b"\x1c\r",
        # Item 7: a batch over hl7.max_batch_messages (1000): refused whole with AR.
        "batch-1001-messages.bin": b"\x0bFHS|^~\\&|LAB\rBHS|^~\\&|LAB\r" + batch
        + b"BTS|1001\rFTS|1\r\x1c\r",
        # Item 7: a frame that never ends (slowloris, cut short).
        "frame-without-end.bin": b"\x0b" + head + b"SLOW1" + tail[:20],
    }


def main() -> None:
    for kind, seeds in (("dicom", dicom_seeds()), ("hl7", hl7_seeds())):
        folder = SEEDS / kind
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
            print(f"{folder / name}: {len(data)} bytes")


if __name__ == "__main__":
    main()
