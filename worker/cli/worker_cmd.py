"""`radraft worker`: a Celery worker on the configured broker, plus the sweeper loop."""

from __future__ import annotations

import logging
import os

import typer

from radraft.core import log_safe
from radraft.worker.cli.context import fail, state


def worker(
    ctx: typer.Context,
    queues: str = typer.Option(
        "stat,draft,delivery", "--queues", "-Q",
        help="Comma-separated queues: stat (stat/urgent drafts), draft, delivery.",
    ),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1,
                                    help="Worker processes (each loads the model)."),
    pool: str = typer.Option("prefork", help="Celery pool: prefork, solo or threads."),
    sweep: bool = typer.Option(True, "--sweep/--no-sweep",
                               help="Run the sweeper loop in this process."),
    hostname: str = typer.Option("", help="Celery node name (default radraft@<host>)."),
) -> None:
    """Run a worker: drafts and deliveries from the broker; the sweeper re-sends due rows."""
    from radraft.core.db import make_engine, make_sessionmaker
    from radraft.core.db.migrate import upgrade
    from radraft.worker.celery_app import QUEUES, make_celery
    from radraft.worker.enqueue import celery_enqueue
    from radraft.worker.heartbeat import Heartbeat
    from radraft.worker.quality_pairing import PairingSweep
    from radraft.worker.sweeper import Sweeper

    settings = state(ctx).settings
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log_safe.install()  # peer values (UIDs, MSH-10, AE titles) cannot forge a log line
    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUES))
    if unknown or not chosen:
        raise fail(f"--queues: unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}")
    upgrade(settings.database_url)
    app = make_celery(settings)
    sweeper = pairing = None
    engine = make_engine(settings.database_url, pool_size=2)
    if sweep:
        sweeper = Sweeper(settings, make_sessionmaker(engine), celery_enqueue(app))
        sweeper.start()
        # Drafts and final reports the score task missed (late drafts, lost wake-ups).
        pairing = PairingSweep(settings, make_sessionmaker(engine))
        pairing.start()
    # Liveness for the console's queues page, whatever the broker.
    heartbeat = Heartbeat(make_sessionmaker(engine), ",".join(chosen),
                          worker_name=f"{hostname}:{os.getpid()}" if hostname else None,
                          interval_s=settings.jobs.heartbeat_s)
    heartbeat.start()
    argv = ["worker", "-Q", ",".join(chosen), "-c", str(concurrency), "--pool", pool,
            "-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if hostname:
        argv += ["-n", hostname]
    try:
        app.worker_main(argv)
    finally:
        heartbeat.stop()
        if sweeper is not None:
            sweeper.stop()
        if pairing is not None:
            pairing.stop()
        engine.dispose()
