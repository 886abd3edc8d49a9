"""Running jobs: each task body runs in the Flask app, in one transaction of its own; and the worker.

A task body is a plain function of its JSON arguments that uses `db.session` and never commits:
`run_in_app` commits once when it returns and rolls back when it raises (procrastinate then
retries the job with backoff, where the task allows it). The worker is procrastinate's, started by
`flask worker` (any number of them, on any number of machines: jobs are claimed with
FOR UPDATE SKIP LOCKED) and by `flask demo` beside the web server.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import procrastinate
from flask import Flask
from procrastinate import RetryStrategy

from portal.extensions import db
from portal.jobs.queue import job_queue

log = logging.getLogger("portal.worker")

# task name -> its body (tests run a job's body in their own transaction).
TASK_BODIES: dict[str, Callable[..., Any]] = {}


def run_in_app(app: Flask, body: Callable[..., Any], args: dict[str, Any], *, job: str | None = None) -> Any:
    """Run `body(**args)` in `app`, committing once at the end (the job's unit of work).

    `job` names it in the slow-query log (default: the body's name).
    """
    from portal.services.slow_queries import current_job

    running = current_job.set(job or body.__name__)
    try:
        with app.app_context():
            try:
                result = body(**args)
                db.session.commit()
                return result
            except BaseException:
                db.session.rollback()
                raise
    finally:
        current_job.reset(running)


def app_task(name: str, *, queue: str, retry: RetryStrategy | int | None = None, cron: str | None = None):
    """Register `body` as the procrastinate task `name` that runs in the worker's Flask app.

    With `cron`, the worker also defers it on that schedule (once per tick across all workers).
    """

    def decorator(body: Callable[..., Any]):
        def run(context: procrastinate.JobContext, **args: Any) -> Any:
            return run_in_app(context.additional_context["flask_app"], body, args, job=name)

        run.__name__ = run.__qualname__ = body.__name__
        run.__doc__ = body.__doc__
        task = job_queue.task(name=name, queue=queue, retry=retry or False, pass_context=True)(run)
        if cron:
            job_queue.periodic(cron=cron)(task)
        TASK_BODIES[name] = body
        return body

    return decorator


def libpq_url(app: Flask) -> str:
    """The app's database as a libpq URL (procrastinate connects with psycopg, not SQLAlchemy)."""
    return app.config["SQLALCHEMY_DATABASE_URI"].replace("postgresql+psycopg://", "postgresql://", 1)


def worker_options(app: Flask, **overrides: Any) -> dict[str, Any]:
    options = {
        "additional_context": {"flask_app": app},
        "concurrency": app.config["WORKER_CONCURRENCY"],
        "update_heartbeat_interval": app.config["WORKER_HEARTBEAT_SECONDS"],
        "stalled_worker_timeout": app.config["WORKER_STALLED_SECONDS"],
        "delete_jobs": "successful",
        "name": "portal-worker",
    }
    options.update(overrides)
    return options


async def retry_stalled_jobs(queue_app: procrastinate.App, seconds_since_heartbeat: float) -> int:
    """Put back the jobs of workers that died mid-job (no heartbeat for a while); returns how many."""
    stalled = list(await queue_app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat))
    for job in stalled:
        log.warning("Retrying job %s (%s): its worker stopped in the middle of it", job.id, job.task_name)
        await queue_app.job_manager.retry_job(job)
    return len(stalled)


def run_worker(app: Flask, *, stop: threading.Event | None = None, **overrides: Any) -> None:
    """Run a worker until Ctrl+C or SIGTERM (or until `stop` is set, for a worker in a thread)."""
    import portal.jobs.tasks  # noqa: F401  (registers the tasks on job_queue)

    options = worker_options(app, **overrides)
    if stop is not None:
        options["install_signal_handlers"] = False

    async def main() -> None:
        async with queue_app.open_async():
            await retry_stalled_jobs(queue_app, app.config["WORKER_STALLED_SECONDS"])
            worker = asyncio.ensure_future(queue_app.run_worker_async(**options))
            if stop is None:
                await worker
                return
            while not worker.done() and not stop.is_set():
                await asyncio.sleep(0.2)
            if not worker.done():
                worker.cancel()
                try:
                    await worker
                except asyncio.CancelledError:
                    pass

    # One worker per process: it gives the task app its connector for as long as it runs.
    with job_queue.replace_connector(procrastinate.PsycopgConnector(conninfo=libpq_url(app))) as queue_app:
        asyncio.run(main())
