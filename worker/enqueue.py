"""Wake-ups on the broker: (row id, attempts token). A lost or failed publish only delays
work: the sweeper re-sends whatever is due (the rows are the source of truth)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from celery import Celery
from kombu.exceptions import KombuError

from radraft.core.types import Priority
from radraft.worker.celery_app import draft_queue

log = logging.getLogger(__name__)

WakeKind = Literal["job", "delivery", "prefetch"]

DRAFT_TASK = "radraft.draft"
DELIVER_TASK = "radraft.deliver"
PREFETCH_TASK = "radraft.prefetch"  # network-bound, like deliveries: the delivery queue


@dataclass(frozen=True, slots=True)
class WakeUp:
    kind: WakeKind
    row_id: int
    attempts: int
    priority: Priority = Priority.ROUTINE


Enqueue = Callable[[WakeUp], None]


def celery_enqueue(app: Celery) -> Enqueue:
    """Publish wake-ups with `app`; a publish error is logged, never raised (see module doc)."""

    def enqueue(wake: WakeUp) -> None:
        name = {"job": DRAFT_TASK, "delivery": DELIVER_TASK}.get(wake.kind, PREFETCH_TASK)
        queue = draft_queue(wake.priority) if wake.kind == "job" else "delivery"
        try:
            app.send_task(
                name, args=[wake.row_id, wake.attempts], queue=queue, routing_key=queue,
                priority=wake.priority.amqp, retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            )
        except (KombuError, OSError) as exc:
            log.warning("%s %d: publish failed (%s); the sweeper will re-send it",
                        wake.kind, wake.row_id, exc)

    return enqueue
