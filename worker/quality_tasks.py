"""The `radraft.score` Celery task and its publisher (issue 21).

The task carries an accession number only; it is idempotent (pairs are unique by
(accession, draft id)) and cheap, so it rides the short "delivery" queue. A lost message
costs nothing but time: the pairing sweep in `radraft worker` scores what is left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu.exceptions import KombuError

from radraft.core.settings import Settings
from radraft.worker.quality_pairing import SCORE_TASK, score_accession

log = logging.getLogger(__name__)

QUEUE = "delivery"


def register_score_task(app: Celery, settings: Settings, state: Callable[[], Any]) -> None:
    """Register radraft.score on `app`; `state()` gives the process's sessionmaker."""

    @app.task(name=SCORE_TASK, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def score(accession: str) -> int:
        with state().sessions() as session:
            return score_accession(session, settings, accession)


def score_publisher(app: Celery) -> Callable[[str], None]:
    """Publish a scoring wake-up for an accession (errors logged: the sweep catches up)."""

    def publish(accession: str) -> None:
        try:
            app.send_task(SCORE_TASK, args=[accession], queue=QUEUE, routing_key=QUEUE,
                          retry=True, retry_policy={"max_retries": 3, "interval_start": 0.2,
                                                    "interval_step": 0.5})
        except (KombuError, OSError) as exc:
            log.warning("score %s: publish failed (%s); the pairing sweep will score it",
                        accession, exc)

    return publish
