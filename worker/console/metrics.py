"""Prometheus metrics at /metrics, read from the database at scrape time.

The events happen in other processes (receiving processes, workers on other hosts), so
the rows are the one place that knows them all. Counters count audit events and rows
that are never deleted (the audit log is not purged), so they only grow; gauges are
current states. Stage latencies are quantiles over the last LATENCY_WINDOW finished jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from statistics import quantiles

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from radraft.core.db import AuditEvent, Delivery, Draft, Job, Study, db_now
from radraft.core.settings import Settings

LATENCY_WINDOW = 500
QUANTILES = (0.5, 0.9, 0.99)


def _audit_count(session: Session, kind: str) -> int:
    return session.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.kind == kind)) or 0


def _quantiles(values: list[float]) -> dict[float, float]:
    if not values:
        return {}
    if len(values) == 1:
        return dict.fromkeys(QUANTILES, values[0])
    cuts = quantiles(values, n=100, method="inclusive")
    return {q: cuts[round(q * 100) - 1] for q in QUANTILES}


class DatabaseCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], settings: Settings | None = None,
                 ) -> None:
        self._sessions = sessions
        self._settings = settings

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            yield from self._counters(session)
            yield from self._gauges(session)
            yield from self._latencies(session)
            if self._settings is not None:
                yield from _quality(session, self._settings)

    def _counters(self, session: Session) -> Iterator[Metric]:
        received = session.scalar(select(func.count(Study.id)).where(
            Study.source == "received")) or 0
        purged = session.scalar(select(func.count(AuditEvent.id)).where(
            AuditEvent.kind == "study.purged",
            AuditEvent.details["source"].as_string() == "received")) or 0
        yield CounterMetricFamily(
            "radraft_studies_received", "Studies received by the DICOM node (purged included)",
            value=received + purged)
        yield CounterMetricFamily("radraft_studies_stable", "Study versions announced stable",
                                  value=_audit_count(session, "study.stable"))
        drafts = CounterMetricFamily("radraft_drafts", "Drafts written, by triage level",
                                     labels=["triage"])
        counts = {level: n for level, n in session.execute(
            select(Draft.triage_level, func.count(Draft.id)).group_by(Draft.triage_level))}
        for level in ("routine", "urgent", "critical"):
            drafts.add_metric([level], counts.get(level, 0))
        yield drafts
        failures = CounterMetricFamily(
            "radraft_delivery_failures", "Deliveries that failed permanently or expired",
            labels=["reason"])
        failures.add_metric(["failed"], _audit_count(session, "delivery.failed"))
        failures.add_metric(["expired"], _audit_count(session, "delivery.expired"))
        yield failures
        yield CounterMetricFamily("radraft_jobs_failed", "Draft jobs that failed",
                                  value=_audit_count(session, "job.failed"))
        yield CounterMetricFamily("radraft_alerts_escalated", "ED alerts escalated",
                                  value=_audit_count(session, "alert.escalated"))

    def _gauges(self, session: Session) -> Iterator[Metric]:
        depth = GaugeMetricFamily("radraft_queue_depth", "Draft jobs by state and priority",
                                  labels=["state", "priority"])
        rows = {(s, p): n for s, p, n in session.execute(
            select(Job.state, Job.priority, func.count(Job.id))
            .where(Job.state.in_(("queued", "running")))
            .group_by(Job.state, Job.priority))}
        for state in ("queued", "running"):
            for priority in ("stat", "urgent", "routine"):
                depth.add_metric([state, priority], rows.get((state, priority), 0))
        yield depth
        outbox = GaugeMetricFamily("radraft_deliveries", "Outbox rows by state and destination",
                                   labels=["state", "destination"])
        for dest, state, count in session.execute(
                select(Delivery.destination, Delivery.state, func.count(Delivery.id))
                .where(Delivery.state.in_(("pending", "failed", "expired")))
                .group_by(Delivery.destination, Delivery.state)):
            outbox.add_metric([state, dest], count)
        yield outbox
        now = db_now(session)
        oldest = session.scalar(select(func.min(Job.created_at)).where(Job.state == "queued"))
        yield GaugeMetricFamily("radraft_oldest_queued_job_seconds",
                                "Age of the oldest queued draft job (0 when none)",
                                value=(now - oldest).total_seconds() if oldest else 0.0)
        unacked = session.scalar(select(func.count(Draft.id)).where(
            Draft.triage_level.in_(("urgent", "critical")), Draft.acknowledged_at.is_(None),
            Draft.mode != "shadow"))
        yield GaugeMetricFamily("radraft_alerts_unacknowledged",
                                "Urgent/critical drafts not acknowledged", value=unacked or 0)

    def _latencies(self, session: Session) -> Iterator[Metric]:
        jobs = session.execute(select(Job.created_at, Job.started_at, Job.finished_at,
                                      Job.timings).where(Job.state == "done")
                               .order_by(Job.finished_at.desc()).limit(LATENCY_WINDOW)).all()
        stages: dict[str, list[float]] = {}
        for created, started, finished, timings in jobs:
            if started is not None:
                stages.setdefault("queue_wait", []).append((started - created).total_seconds())
            if finished is not None:
                stages.setdefault("total", []).append((finished - created).total_seconds())
            for stage, seconds in (timings or {}).items():
                if isinstance(seconds, int | float):
                    stages.setdefault(stage, []).append(float(seconds))
        family = GaugeMetricFamily(
            "radraft_stage_latency_seconds",
            f"Draft stage latencies over the last {LATENCY_WINDOW} finished jobs",
            labels=["stage", "quantile"])
        for stage, values in sorted(stages.items()):
            for q, value in _quantiles(values).items():
                family.add_metric([stage, str(q)], value)
        yield family


def _quality(session: Session, settings: Settings) -> Iterator[Metric]:
    """Headline quality scores over `quality.window_days`, by mode (values only: the
    intervals are on the Quality page)."""
    from radraft.reporting.quality.agreement import crg_of, macro_f1_of, matrices
    from radraft.worker.console.quality_queries import scored_pairs
    from radraft.worker.quality_pairing import site_lexicon

    since = db_now(session) - timedelta(days=settings.quality.window_days)
    items = scored_pairs(session, since)
    vocabulary = site_lexicon(settings).vocabulary
    pairs = GaugeMetricFamily("radraft_quality_pairs",
                              "Drafts paired with a final report in the quality window",
                              labels=["mode"])
    scores = GaugeMetricFamily(
        "radraft_quality_score",
        "Headline quality scores over the quality window (0-1; see the Quality page for "
        "intervals)", labels=["score", "mode"])
    for mode in ("all", "live", "shadow"):
        chosen = [i for i in items if mode == "all" or i.pair.mode == mode]
        pairs.add_metric([mode], len(chosen))
        if not chosen:
            continue
        pred, gold = matrices([i.pair.draft_labels for i in chosen],
                              [i.pair.final_labels for i in chosen], vocabulary)
        values: dict[str, float | None] = {"macro_f1": macro_f1_of(pred, gold),
                                           "crg": crg_of(pred, gold)}
        for name in ("rougeL.findings", "bleu4.findings", "chrf.findings"):
            got = [i.scores[name] for i in chosen if name in i.scores]
            values[name] = sum(got) / len(got) if got else None
        outcomes = [i.pair.triage for i in chosen]
        tp, fn, fp = (outcomes.count(k) for k in ("TP", "FN", "FP"))
        values["triage_sensitivity"] = tp / (tp + fn) if tp + fn else None
        values["triage_ppv"] = tp / (tp + fp) if tp + fp else None
        for name, value in values.items():
            if value is not None:
                scores.add_metric([name, mode], value)
    yield pairs
    yield scores


def make_registry(sessions: sessionmaker[Session], settings: Settings | None = None,
                  ) -> CollectorRegistry:
    """A registry of the console's own (no process-global default registry); with
    `settings`, the quality gauges too."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(sessions, settings))
    return registry
