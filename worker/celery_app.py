"""The Celery app: queues, priorities, durability options. Tasks carry row ids only.

Queues (each declared with x-max-priority 9 on RabbitMQ; a message's priority is its
job's `Priority.amqp`):
  stat      drafts of stat and urgent jobs (run dedicated workers on it: Celery reads several
            queues round-robin, so priority only orders messages inside one queue)
  draft     routine drafts
  delivery  outbox rows (C-STORE, MLLP, folder): short, never stuck behind a draft
"""

from __future__ import annotations

from celery import Celery
from kombu.entity import Queue

from radraft.core.settings import Settings
from radraft.core.types import Priority

QUEUES = ("stat", "draft", "delivery")
MAX_PRIORITY = 9


def draft_queue(priority: Priority) -> str:
    return "draft" if priority is Priority.ROUTINE else "stat"


def make_celery(settings: Settings) -> Celery:
    """A Celery app for `settings` with the radraft tasks registered."""
    app = Celery("radraft", broker=settings.broker_url, set_as_current=False)
    queue_args = {"x-max-priority": MAX_PRIORITY}
    app.conf.update(
        task_queues=[Queue(name, routing_key=name, queue_arguments=queue_args)  # type: ignore[no-untyped-call]
                     for name in QUEUES],
        task_default_queue="draft",
        task_default_priority=Priority.ROUTINE.amqp,
        task_queue_max_priority=MAX_PRIORITY,
        # Without prefetch 1 a worker holds several messages and priorities do nothing.
        worker_prefetch_multiplier=1,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_time_limit=settings.jobs.time_limit_s,
        task_soft_time_limit=max(settings.jobs.time_limit_s - 30, 1),
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        broker_heartbeat=30,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        # kombu's SQLAlchemy transport hands these to create_engine: the SQLite busy
        # timeout (the file is already in WAL mode, set by radraft's own engine).
        broker_transport_options=(
            {"connect_args": {"timeout": 30}} if settings.embedded_broker else {}
        ),
    )
    from radraft.worker.tasks import register_tasks

    register_tasks(app, settings)
    return app
