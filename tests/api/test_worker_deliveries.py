"""Webhook deliveries run by real `flask worker` processes on a database of their own: a worker
killed in the middle of a delivery delivers it after restart, once; two workers never send the
same attempt twice; a receiver down for the whole (shortened, by configuration) backoff ends
dead-lettered."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import ENCRYPTION_KEY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def worker_db(pg, tmp_path_factory):
    """A migrated database the worker processes share with the test (committed data)."""
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db

    name = pg.create_database("techserv_worker")
    app = create_app({"TESTING": True, "SECRET_KEY": "worker-test", "SQLALCHEMY_DATABASE_URI": pg.url_for(name),
                      "MAIL_BACKEND": "memory", "WEBHOOK_ALLOW_PRIVATE_URLS": True, "ENCRYPTION_KEYS": ENCRYPTION_KEY,
                      "ATTACHMENTS_PATH": str(tmp_path_factory.mktemp("worker-attachments"))})
    with app.app_context():
        upgrade()
    yield app, pg.libpq_url_for(name), tmp_path_factory.mktemp("worker-instance")
    with app.app_context():
        db.engine.dispose()
    pg.drop_database(name)


class Receiver:
    """Records (event id, attempt) of each POST; can hold the first request open until released."""

    def __init__(self, *, hold_first: bool = False, status: int = 200) -> None:
        self.seen: list[tuple[str, str]] = []
        self.answered_ok = 0
        self.release = threading.Event()
        self.hold_first, self.status = hold_first, status
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.seen.append((self.headers["X-TechServ-Event-Id"], self.headers["X-TechServ-Delivery-Attempt"]))
                if receiver.hold_first and len(receiver.seen) == 1:
                    receiver.release.wait(60)
                    return  # the worker is gone; nobody reads an answer
                time.sleep(0.02)
                self.send_response(receiver.status)
                self.end_headers()
                if 200 <= receiver.status < 300:
                    receiver.answered_ok += 1

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _emit(app, url: str, count: int, *, duplicate_jobs: bool = False) -> None:
    """A subscription to `url` and `count` ticket.created events, committed (their delivery jobs too)."""
    from portal.extensions import db
    from portal.jobs.queue import defer
    from portal.models import WebhookSubscription
    from portal.services import events, policy, webhooks

    with app.app_context():
        db.session.execute(sa.update(WebhookSubscription).values(is_active=False))
        db.session.add(WebhookSubscription(url=url, event_types=["ticket.created"], secret="whsec_worker_test"))
        db.session.flush()
        for n in range(count):
            event = events.emit(db.session, policy.Principal.system("test"), "ticket.created", ("support_tickets", n),
                                {"ticket_id": n, "customer_id": 1, "priority": "high", "assigned_employee_id": None})
            if duplicate_jobs:  # the same first attempt enqueued twice: still sent once
                defer(db.session, webhooks.jobs_for(db.session, event))
        db.session.commit()


def _start_worker(database_url: str, instance: Path, **env) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    # The same key as the app that wrote the subscriptions: the worker reads their secrets back to sign.
    environment.update(DATABASE_URL=database_url, PUBLIC_BASE_URL="http://127.0.0.1:5000", SECRET_KEY="worker-test",
                       ENCRYPTION_KEYS=ENCRYPTION_KEY,
                       INSTANCE_PATH=str(instance), WEBHOOK_ALLOW_PRIVATE_URLS="1", WORKER_STALLED_SECONDS="2",
                       WORKER_HEARTBEAT_SECONDS="1", PYTHONUNBUFFERED="1", **env)
    log = instance / f"worker-{time.monotonic_ns()}.log"  # a file, not a pipe: a chatty worker never blocks
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "flask", "worker", "--queue", "webhooks"], cwd=ROOT,
                                   env=environment, stdout=output, stderr=subprocess.STDOUT)
    process.log = log
    return process


def _stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.log.read_text()


def _wait(condition, timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _query(app, statement: str):
    from portal.extensions import db

    with app.app_context():
        rows = db.session.execute(sa.text(statement)).all()
        db.session.rollback()
        return rows


def _clean(app) -> None:
    from portal.extensions import db

    with app.app_context():
        db.session.execute(sa.text("DELETE FROM webhook_subscriptions; DELETE FROM procrastinate_jobs "
                                   "WHERE task_name = 'webhook.deliver'"))
        db.session.commit()


def test_a_worker_killed_mid_delivery_delivers_it_after_restart_once(worker_db):
    app, database_url, instance = worker_db
    _clean(app)
    receiver = Receiver(hold_first=True)
    first = _start_worker(database_url, instance)
    second = None
    try:
        _emit(app, receiver.url, 1)
        _wait(lambda: len(receiver.seen) == 1, what="the first worker to start sending")
        first.kill()  # SIGKILL, in the middle of the POST
        first.wait()
        assert _query(app, "SELECT status FROM procrastinate_jobs WHERE task_name = 'webhook.deliver'") == [("doing",)]
        assert _query(app, "SELECT count(*) FROM webhook_attempts") == [(0,)]  # its transaction died with it
        time.sleep(3)  # longer than WORKER_STALLED_SECONDS: the dead worker's heartbeat is stale
        second = _start_worker(database_url, instance)
        _wait(lambda: _query(app, "SELECT status FROM webhook_deliveries") == [("delivered",)],
              what="the restarted worker to deliver")
        time.sleep(2)  # nothing more comes
        assert receiver.answered_ok == 1
        assert [event_id for event_id, _ in receiver.seen] == [receiver.seen[0][0]] * 2  # the cut one, then once
        assert _query(app, "SELECT attempts FROM webhook_deliveries") == [(1,)]
        assert _query(app, "SELECT attempt_number, response_status FROM webhook_attempts") == [(1, 200)]
    finally:
        receiver.close()
        _stop(first)
        if second is not None:
            _stop(second)


def test_two_workers_never_send_the_same_attempt_twice(worker_db):
    app, database_url, instance = worker_db
    _clean(app)
    receiver = Receiver()
    _emit(app, receiver.url, 30, duplicate_jobs=True)  # 60 jobs for 30 first attempts
    workers = [_start_worker(database_url, instance, WORKER_CONCURRENCY="4") for _ in range(2)]
    try:
        _wait(lambda: _query(app, "SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'") == [(30,)]
              and _query(app, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'webhook.deliver' "
                              "AND status IN ('todo', 'doing')") == [(0,)], what="30 deliveries")
        time.sleep(1)
    finally:
        outputs = [_stop(worker) for worker in workers]
        receiver.close()
    assert len(receiver.seen) == 30 and len(set(receiver.seen)) == 30, outputs
    assert _query(app, "SELECT count(*), count(DISTINCT delivery_id) FROM webhook_attempts") == [(30, 30)]


def test_a_receiver_down_for_the_whole_backoff_is_dead_lettered_by_a_real_worker(worker_db):
    app, database_url, instance = worker_db
    _clean(app)
    receiver = Receiver(status=503)
    worker = _start_worker(database_url, instance, WEBHOOK_RETRY_SCHEDULE="1,1,1")  # 24 h shortened by configuration
    try:
        _emit(app, receiver.url, 1)
        _wait(lambda: _query(app, "SELECT status FROM webhook_deliveries") == [("dead",)], what="the dead letter")
    finally:
        _stop(worker)
        receiver.close()
    assert _query(app, "SELECT attempts, last_response_status FROM webhook_deliveries") == [(4, 503)]
    assert [attempt for _, attempt in receiver.seen] == ["1", "2", "3", "4"]


def test_a_slow_receiver_holds_up_no_other(worker_db):
    from portal.extensions import db
    from portal.models import WebhookSubscription
    from portal.services import events, policy

    app, database_url, instance = worker_db
    _clean(app)
    slow, fast = Receiver(hold_first=True), Receiver()
    with app.app_context():
        for receiver in (slow, fast):
            db.session.add(WebhookSubscription(url=receiver.url, event_types=["ticket.created"], secret="whsec_x"))
        db.session.flush()
        events.emit(db.session, policy.Principal.system("test"), "ticket.created", ("support_tickets", 1),
                    {"ticket_id": 1, "customer_id": 1, "priority": "high", "assigned_employee_id": None})
        db.session.commit()
    worker = _start_worker(database_url, instance, WORKER_CONCURRENCY="4", WEBHOOK_TIMEOUT_SECONDS="30")
    try:
        recorded = ("SELECT s.url, d.status FROM webhook_deliveries d JOIN webhook_subscriptions s "
                    "USING (subscription_id) WHERE d.status = 'delivered'")
        # The worker records the delivery once the receiver answered: wait for the record, not the answer.
        _wait(lambda: _query(app, recorded) == [(fast.url, "delivered")], what="the fast receiver's delivery")
        assert fast.answered_ok == 1
        assert len(slow.seen) == 1 and slow.answered_ok == 0  # still waiting on the slow one meanwhile
    finally:
        slow.close()
        fast.close()
        _stop(worker)
