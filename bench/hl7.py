"""HL7 listener throughput: radraft (store + commit before ACK) vs a reference that only ACKs.

python -m bench.hl7 [--messages 400] [--reps 3]
SQLite and PostgreSQL, 1 and 8 connections; medians of --reps runs; also messages per commit
(group commit). Prints PostgreSQL's fsync and synchronous_commit as the bench's sessions see
them and refuses to report when either is off (the figure would be meaningless).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from radraft.core.db import make_engine, make_sessionmaker
from radraft.core.db.migrate import upgrade
from radraft.core.settings import Hl7Settings, Settings
from radraft.ehr.component import Hl7Listener
from radraft.ehr.mllp import END, build_ack, frame
from radraft.ehr.samples import demo_messages

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(port: int, messages: list[bytes]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        for message in messages:
            sock.sendall(frame(message))
            buffer = b""
            while END not in buffer:
                buffer += sock.recv(65536)


def _burst(port: int, connections: int, total: int, tag: str) -> float:
    template = demo_messages(accession="B", patient_id="PB")[1]
    per = total // connections
    batches = [[template.replace(b"LABB", f"{tag}-{c}-{i}".encode()) for i in range(per)]
               for c in range(connections)]
    threads = [threading.Thread(target=_client, args=(port, batch)) for batch in batches]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return per * connections / (time.perf_counter() - start)


def _reference_server(port: int) -> Callable[[], None]:
    """An MLLP server that ACKs without storing; returns its stop function."""
    loop = asyncio.new_event_loop()
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        buffer = b""
        try:
            while chunk := await reader.read(65536):
                buffer += chunk
                while END in buffer:
                    _block, buffer = buffer.split(END, 1)
                    writer.write(frame(build_ack(None, "AA")))
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            handlers.discard(task)

    ready = threading.Event()

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        ready.set()
        try:
            await asyncio.Event().wait()  # until cancelled
        finally:
            server.close()
            for task in list(handlers):
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)

    main = loop.create_task(serve())
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(asyncio.gather(main, return_exceptions=True)),
        daemon=True)
    thread.start()
    ready.wait()

    def stop() -> None:
        loop.call_soon_threadsafe(main.cancel)
        thread.join(10)

    return stop


class _Commits:
    """Counts the engine's commits (messages per commit shows the group commit at work)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _conn: object) -> None:
        self.count += 1


def _durability(engine: Engine) -> str:
    """fsync and synchronous_commit as the bench's own sessions see them (a per-database or
    per-role override counts); exits when either is off: the figure would be meaningless."""
    with engine.connect() as conn:
        fsync = str(conn.scalar(select(func.current_setting("fsync"))))
        sync = str(conn.scalar(select(func.current_setting("synchronous_commit"))))
    print(f"PostgreSQL fsync={fsync} synchronous_commit={sync}", flush=True)
    if fsync != "on" or sync == "off":
        raise SystemExit(f"PostgreSQL fsync={fsync} synchronous_commit={sync}: refusing to "
                         "report (an ACK would not mean the message is durable)")
    return f"fsync={fsync} synchronous_commit={sync}"


def _pg_database() -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS radraft_bench_hl7")
        conn.execute("CREATE DATABASE radraft_bench_hl7")
    return PG_ADMIN.rsplit("/", 1)[0] + "/radraft_bench_hl7"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=400, help="per run")
    parser.add_argument("--reps", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()
    sqlite = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    urls = {"sqlite": sqlite, "postgresql": _pg_database()}
    rows: list[tuple[str, int, float, float, float]] = []
    for name, url in urls.items():
        upgrade(url)
        engine = make_engine(url, pool_size=10)
        if name == "postgresql":
            _durability(engine)
        else:
            print("SQLite journal_mode=WAL synchronous=FULL (radraft's engine)", flush=True)
        commits = _Commits()
        event.listen(engine, "commit", commits)
        sessions = make_sessionmaker(engine)
        for connections in (1, 8):
            ours, ref, batch = [], [], []
            for rep in range(args.reps):
                port = _free_port()
                listener = Hl7Listener(Settings(hl7=Hl7Settings(host="127.0.0.1", port=port)),
                                       sessions)
                listener.start()
                before = commits.count
                ours.append(_burst(port, connections, args.messages, f"{name}{connections}r{rep}"))
                listener.stop()
                batch.append(args.messages / max(commits.count - before, 1))
                port = _free_port()
                stop = _reference_server(port)
                ref.append(_burst(port, connections, args.messages, "ref"))
                stop()
                print(f"  {name} x{connections} rep {rep + 1}: "
                      f"{ours[-1]:.0f} vs {ref[-1]:.0f} msg/s, {batch[-1]:.1f} msg/commit",
                      flush=True)
            rows.append((name, connections, statistics.median(ours), statistics.median(ref),
                         statistics.median(batch)))
        engine.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{'database':<11}{'conns':>6}{'radraft msg/s':>15}{'reference msg/s':>17}"
          f"{'ratio':>7}{'msg/commit':>12}")
    for name, connections, ours_m, ref_m, batch_m in rows:
        print(f"{name:<11}{connections:>6}{ours_m:>15.0f}{ref_m:>17.0f}{ours_m / ref_m:>7.2f}"
              f"{batch_m:>12.1f}")
    print(f"peak RSS {rss:.0f} MiB (one process: both servers and the clients); radraft = "
          "stored, applied and committed before each ACK; medians of "
          f"{args.reps} runs of {args.messages} messages")


if __name__ == "__main__":
    main()
