"""Ingest benchmark: dcmtk storescu sends one generated CT study to radraft, storescp and Orthanc
(then the same study by STOW-RS to radraft and Orthanc: bench/stow.py).

    python -m bench.ingest [--reps 3] [--slices 200] [--pdus 16384,131072] [--processes N]
                           [--servers radraft,rd-stock,storescp,orthanc]

One study (3 phases x 200 slices x 512x512, 16-bit: about 300 MB) goes over 1 association
and over 4 concurrent associations, at send PDU sizes of 16 KiB and 128 KiB, to:
- radraft's node (`radraft serve`: fsync per file, rename, directory fsync, index row commit),
  on its fast receive path (`radraft`) and on pynetdicom's stock path (`rd-stock`,
  `dicom.fast_receive: false`),
- dcmtk storescp +xa (no fsync, no index: the ceiling of the network path),
- Orthanc (storage fsync on, SQLite index).
Every server starts on an empty store for every run (after an `os.sync()`, so no run pays for
the previous one's writeback), with TCP_NODELAY on every side. The fsync'd disk rate (the same
files written with one fsync each) is measured before every repetition as the physical floor
of durable ingest. Repetitions interleave the servers; the table quotes medians of --reps
repetitions, the peak RSS (sum over the server's process tree, sampled every 50 ms) and the
median of the ratios taken within each repetition.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from bench.ingest_servers import ENV, orthanc_server, radraft_server, storescp_server

STORESCU = "/usr/bin/storescu"


def make_study(folder: Path, slices: int, size: int = 512) -> list[Path]:
    """3 phases x `slices` CT images, 16-bit; cached between runs."""
    files = sorted(folder.glob("*.dcm"))
    if len(files) == 3 * slices:
        return files
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    study_uid = generate_uid()
    pixels = rng.integers(0, 4000, (size, size), dtype=np.uint16)
    for phase in range(3):
        series_uid = generate_uid()
        for index in range(slices):
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            sop_uid = generate_uid()
            ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.Modality, ds.PatientID, ds.StudyDescription = "CT", "BENCH", "CT ABDOMEN"
            ds.SeriesNumber, ds.InstanceNumber = phase + 1, index + 1
            ds.ImagePositionPatient = [0, 0, -index]
            ds.Rows = ds.Columns = size
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
            ds.PixelData = np.roll(pixels, index, axis=0).tobytes()
            ds.save_as(folder / f"{phase}_{index:04d}.dcm", enforce_file_format=True)
        print(f"  generated phase {phase + 1}/3", flush=True)
    return sorted(folder.glob("*.dcm"))


class RssSampler:
    """Peak of the summed RSS of a process and all its descendants."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        pids, frontier = [self.pid], [self.pid]
        while frontier:
            parent = frontier.pop()
            try:
                children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            except OSError:
                continue
            pids.extend(int(c) for c in children)
            frontier.extend(int(c) for c in children)
        return pids

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = 0
            for pid in self._tree():
                try:
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1]) * 1024
                except OSError:
                    continue
            self.peak = max(self.peak, total)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


@dataclass
class Result:
    seconds: float
    peak_rss: int


def send(files: list[Path], port: int, aet: str, associations: int, pdu: int) -> float:
    """storescu over `associations` concurrent associations; returns wall seconds."""
    chunks = [files[i::associations] for i in range(associations)]
    start = time.perf_counter()
    senders = [
        subprocess.Popen(
            [STORESCU, "-aec", aet, "-aet", "BENCH", "--max-send-pdu", str(pdu),
             "127.0.0.1", str(port), *map(str, chunk)],
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        ) for chunk in chunks
    ]
    for sender in senders:
        _, err = sender.communicate()
        if sender.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.decode()[-500:]}")
    return time.perf_counter() - start


def fsync_disk_rate(files: list[Path], work: Path) -> float:
    """Seconds to write the same files with an fsync each (the durable floor)."""
    target = work / "fsync"
    target.mkdir()
    blobs = [p.read_bytes() for p in files]
    try:
        start = time.perf_counter()
        for index, blob in enumerate(blobs):
            fd = os.open(target / f"{index}.dcm", os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, blob)
            os.fsync(fd)
            os.close(fd)
        dirfd = os.open(target, os.O_RDONLY)
        os.fsync(dirfd)
        os.close(dirfd)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_once(
    server: Callable[[Path], object], files: list[Path], associations: int, pdu: int,
    scratch: Path,
) -> Result:
    work = Path(tempfile.mkdtemp(dir=scratch))  # an empty store every run
    os.sync()  # the previous run's dirty pages are not this run's writeback
    try:
        with server(work) as (port, pid, aet):  # type: ignore[attr-defined]
            sampler = RssSampler(pid)
            seconds = send(files, port, aet, associations, pdu)
            peak = sampler.stop()
        return Result(seconds, peak)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--slices", type=int, default=200, help="slices per phase (3 phases)")
    parser.add_argument("--pdus", default="16384,131072")
    parser.add_argument("--processes", type=int, default=4,
                        help="radraft dicom.receive_processes")
    parser.add_argument("--scratch", type=Path, default=Path(tempfile.gettempdir()) / "rd-bench")
    parser.add_argument("--servers", default="radraft,rd-stock,storescp,orthanc")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    print(f"generating the study in {args.scratch / 'study'} ...", flush=True)
    files = make_study(args.scratch / "study", args.slices)
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    print(f"{len(files)} files, {megabytes:.0f} MB; {args.reps} repetitions each", flush=True)

    known: dict[str, Callable[[Path], object]] = {
        "radraft": lambda w: radraft_server(w, args.processes, True),
        "rd-stock": lambda w: radraft_server(w, args.processes, False),
        "storescp": storescp_server,
        "orthanc": orthanc_server,
    }
    servers = {name: known[name] for name in ["radraft", *args.servers.split(",")]}
    pdus = [int(p) for p in args.pdus.split(",")]
    # Repetitions interleave the servers (and the disk floor), so a slow spell of this
    # shared machine hits all of them; ratios are taken within a repetition, then medians.
    rates: dict[tuple[int, int, str], list[float]] = {}
    peaks: dict[tuple[int, int, str], int] = {}
    disk_rates: dict[tuple[int, int], list[float]] = {}
    for associations in (1, 4):
        for pdu in pdus:
            for rep in range(args.reps):
                os.sync()
                seconds = fsync_disk_rate(files, Path(tempfile.mkdtemp(dir=args.scratch)))
                disk_rates.setdefault((associations, pdu), []).append(megabytes / seconds)
                for name, server in servers.items():
                    result = run_once(server, files, associations, pdu, args.scratch)
                    key = (associations, pdu, name)
                    rates.setdefault(key, []).append(megabytes / result.seconds)
                    peaks[key] = max(peaks.get(key, 0), result.peak_rss)
                    print(f"  {name:8s} assoc={associations} pdu={pdu // 1024:3d}K rep {rep + 1}: "
                          f"{megabytes / result.seconds:6.1f} MB/s", flush=True)
    print()
    print(f"radraft receive_processes={args.processes} (rd-stock: the same, fast_receive "
          f"off); medians of {args.reps} runs; radraft/this: median of the ratios within "
          "each repetition")
    header = (f"{'assoc':>5} {'pdu':>5} {'server':9} {'MB/s':>7} {'inst/s':>7} {'peak RSS':>9} "
              f"{'radraft/this':>12}")
    print(header)
    print("-" * len(header))
    for (associations, pdu, name), values in rates.items():
        ours = rates[(associations, pdu, "radraft")]
        mbps = statistics.median(values)
        ratio = statistics.median(o / v for o, v in zip(ours, values, strict=True))
        peak_mb = peaks[(associations, pdu, name)] / 2**20
        print(f"{associations:>5} {pdu // 1024:>4}K {name:9} {mbps:7.1f} "
              f"{mbps / megabytes * len(files):7.1f} {peak_mb:7.0f}MB {ratio:11.2f}x")
    for (associations, pdu), disks in disk_rates.items():
        ours = rates[(associations, pdu, "radraft")]
        ratio = statistics.median(o / d for o, d in zip(ours, disks, strict=True))
        print(f"assoc={associations} pdu={pdu // 1024}K: fsync'd disk floor "
              f"{statistics.median(disks):.1f} MB/s (write + fsync per file, measured before "
              f"each repetition); radraft = {ratio:.2f}x of it")
    print()
    # The same study over DICOMweb: radraft's STOW-RS beside Orthanc's (bench/stow.py).
    from bench.stow import stow_table

    stow_table(files, args.reps, args.scratch)

if __name__ == "__main__":
    main()
