"""The job queue: procrastinate on the app's own PostgreSQL (its tables are the outbox).

A job is enqueued on the SQLAlchemy session's own connection, inside the transaction of the change
that caused it: a commit keeps the change and its jobs, a rollback neither. Services only name the
task (`defer(session, "mail.send", kind=..., ...)`), so deferring needs no task code imported and
no connection pool of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import procrastinate

# The app the tasks are registered on; the worker gives it a connector to its database and opens
# it (portal.jobs.runner).
job_queue = procrastinate.App(connector=procrastinate.PsycopgConnector(), import_paths=["portal.jobs.tasks"])
# Deferring from a request or a job writes the job row on that transaction's own connection: this
# app is never opened (no pool, no connection of its own) and knows tasks only by name, so pages
# and services need no task code, and a worker running in the same process (`flask demo`) never
# shares a connector with them.
_deferrer = procrastinate.App(connector=procrastinate.PsycopgConnector())

# Queues, so that one slow kind of work holds up no other: mail, webhook deliveries, scans.
QUEUES = ("mail", "webhooks", "scans", "default")


@dataclass(frozen=True)
class Job:
    """A job to enqueue: the task's name and its JSON arguments."""

    task: str
    args: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    schedule_at: datetime | None = None  # not before then (a retry's backoff)


def defer(session, jobs: list[Job]) -> None:
    """Enqueue `jobs` in the session's current transaction (they commit or roll back with it).

    Jobs of one task, queue and schedule are written in one statement (a bulk approval's webhooks).
    """
    if not jobs:
        return
    connection = session.connection().connection.driver_connection
    batches: dict[tuple, list[dict[str, Any]]] = {}
    for job in jobs:
        batches.setdefault((job.task, job.queue, job.schedule_at), []).append(job.args)
    for (task, queue, schedule_at), args in batches.items():
        deferrer = _deferrer.configure_task(task, queue=queue, connection=connection, schedule_at=schedule_at)
        if len(args) == 1:
            deferrer.defer(**args[0])
        else:
            deferrer.batch_defer(*args)
