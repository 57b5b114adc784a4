"""STOW-RS ingest: the same generated CT study POSTed to radraft's STOW-RS endpoint and to
Orthanc's DICOMweb plugin, in the same run.

    python -m bench.stow [--reps 3] [--slices 200] [--batch 50]

(`python -m bench.ingest` prints this table after its DIMSE one.) One client (httpx) posts
multipart/related batches of `--batch` instances over 1 connection and over 4 concurrent
ones. radraft stores each part as C-STORE does (fsync, rename, directory fsync, index commit
before the part is listed as stored); Orthanc with storage fsync on and its SQLite index.
Every server starts on an empty store; medians of --reps repetitions, interleaved; peak RSS
of each server's process tree; radraft/Orthanc is the median of the per-repetition ratios.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import yaml

from bench.ingest import RssSampler, make_study
from bench.ingest_servers import ENV, free_port

TOKEN = "bench-stow-token"



def _batches(files: list[Path], size: int) -> list[list[Path]]:
    return [files[i:i + size] for i in range(0, len(files), size)]


def _body(batch: list[Path]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for path in batch:
        parts.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        parts.append(path.read_bytes())
        parts.append(b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f'multipart/related; type="application/dicom"; boundary={boundary}'


def post_all(url: str, headers: dict[str, str], files: list[Path], batch: int,
             connections: int) -> float:
    """POST every file, `batch` per request, over `connections` clients; wall seconds."""
    chunks = [files[i::connections] for i in range(connections)]

    def one_client(chunk: list[Path]) -> None:
        with httpx.Client(timeout=600) as client:
            for part in _batches(chunk, batch):
                body, content_type = _body(part)
                answer = client.post(url, content=body,
                                     headers={**headers, "Content-Type": content_type,
                                              "Accept": "application/dicom+json"})
                if answer.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {answer.status_code} {answer.text[:300]}")

    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        for future in [pool.submit(one_client, c) for c in chunks]:
            future.result()
    return time.perf_counter() - start


@contextmanager
def radraft_stow(work: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    web = free_port()
    config = work / "radraft.yaml"
    config.write_text(yaml.safe_dump({
        "data_dir": str(work / "radraft"),
        "dicom": {"port": free_port(), "host": "127.0.0.1", "stable_seconds": 3600,
                  "min_free_bytes": 0},
        "hl7": {"host": "127.0.0.1", "port": free_port()},
        "web": {"host": "127.0.0.1", "port": web},
        "dicomweb": {"senders": {"bench": TOKEN}},
    }))
    radraft = Path(sys.executable).parent / "radraft"
    process = subprocess.Popen([str(radraft), "--config", str(config), "serve"], env=ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{web}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("radraft serve did not start")
            time.sleep(0.2)
        yield (f"http://127.0.0.1:{web}/dicomweb/studies",
               {"Authorization": f"Bearer {TOKEN}"}, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


@contextmanager
def orthanc_stow(work: Path) -> Iterator[tuple[str, dict[str, str], int]]:
    from tests.orthanc import OrthancServer

    server = OrthancServer(work / "orthanc", dicomweb=True)
    server.start()
    try:
        assert server.process is not None
        yield f"{server.dicomweb_url}/studies", {}, server.process.pid
    finally:
        server.stop()


def run_once(server: Callable[[Path], object], files: list[Path], batch: int,
             connections: int, scratch: Path) -> tuple[float, int]:
    work = Path(tempfile.mkdtemp(dir=scratch))
    os.sync()
    try:
        with server(work) as (url, headers, pid):  # type: ignore[attr-defined]
            sampler = RssSampler(pid)
            seconds = post_all(url, headers, files, batch, connections)
            return seconds, sampler.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stow_table(files: list[Path], reps: int, scratch: Path, batch: int = 50) -> None:
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    servers: dict[str, Callable[[Path], object]] = {"radraft": radraft_stow,
                                                    "orthanc": orthanc_stow}
    rates: dict[tuple[int, str], list[float]] = {}
    peaks: dict[tuple[int, str], int] = {}
    for connections in (1, 4):
        for rep in range(reps):
            for name, server in servers.items():
                seconds, peak = run_once(server, files, batch, connections, scratch)
                rates.setdefault((connections, name), []).append(megabytes / seconds)
                peaks[(connections, name)] = max(peaks.get((connections, name), 0), peak)
                print(f"  STOW-RS {name:8s} connections={connections} rep {rep + 1}: "
                      f"{megabytes / seconds:6.1f} MB/s", flush=True)
    print()
    print(f"STOW-RS, {len(files)} instances ({megabytes:.0f} MB) in batches of {batch}; "
          f"medians of {reps} runs")
    header = (f"{'conn':>4} {'server':9} {'MB/s':>7} {'inst/s':>7} {'peak RSS':>9} "
              f"{'radraft/this':>12}")
    print(header)
    print("-" * len(header))
    for (connections, name), values in rates.items():
        ours = rates[(connections, "radraft")]
        mbps = statistics.median(values)
        ratio = statistics.median(o / v for o, v in zip(ours, values, strict=True))
        print(f"{connections:>4} {name:9} {mbps:7.1f} {mbps / megabytes * len(files):7.1f} "
              f"{peaks[(connections, name)] / 2**20:7.0f}MB {ratio:11.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--slices", type=int, default=200, help="slices per phase (3 phases)")
    parser.add_argument("--batch", type=int, default=50, help="instances per request")
    parser.add_argument("--scratch", type=Path,
                        default=Path(tempfile.gettempdir()) / "rd-bench-stow")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    files = make_study(args.scratch / "study", args.slices)
    stow_table(files, args.reps, args.scratch, args.batch)


if __name__ == "__main__":
    main()
