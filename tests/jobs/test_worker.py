"""The outbox and the worker on a database that really commits, with real `flask worker` processes.

- An event and its jobs commit together and roll back together.
- A worker killed in the middle of sending a mail loses nothing: after a restart the mail goes out,
  once. The mail server is a real SMTP server (aiosmtpd) in this process; it holds the first
  delivery open until the worker is dead and then refuses it, as a mail server does when the
  client vanishes mid-conversation.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from portal import create_app
from portal.extensions import db
from portal.models import Account, AuditEvent
from portal.services import auth, tickets
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def committed(pg):
    name = pg.create_database("techserv_worker")
    app = create_app({"TESTING": True, "SECRET_KEY": "worker-tests", "SQLALCHEMY_DATABASE_URI": pg.url_for(name),
                      "MAIL_BACKEND": "memory"})
    with app.app_context():
        upgrade()
        db.session.remove()
    yield app, pg.libpq_url_for(name)
    with app.app_context():
        db.engine.dispose()
    pg.drop_database(name)


def _jobs(url: str) -> list[tuple]:
    """The mail jobs (a worker also defers its periodic scans; those are not this file's business)."""
    with psycopg.connect(url) as connection:
        return connection.execute("SELECT id, task_name, status::text, args FROM procrastinate_jobs"
                                  " WHERE task_name = 'mail.send' ORDER BY id").fetchall()


def _a_staff_reply(app, *, commit: bool) -> int:
    """A senior technician answers a contact who wants email; returns the ticket id."""
    with app.app_context():
        session = db.session
        contact = f.make_contact_login(session)
        senior = f.make_staff(session, role="senior_technician")
        ticket = f.make_ticket(session, customer=contact.customer, contact_id=contact.contact_id, status="in_progress")
        session.commit()
        who = auth.principal_for(session, session.scalar(sa.select(Account.account_id)
                                                         .where(Account.email == senior.email)))
        tickets.add_comment(session, who, ticket, "Please restart the printer.")
        ticket_id = ticket.ticket_id
        if commit:
            session.commit()
        else:
            session.rollback()
        session.remove()
    return ticket_id


def test_an_event_and_its_jobs_commit_together_and_roll_back_together(committed):
    app, url = committed
    before = len(_jobs(url))
    rolled_back = _a_staff_reply(app, commit=False)
    committed_ticket = _a_staff_reply(app, commit=True)
    with app.app_context():
        replied = {row for row in db.session.scalars(sa.select(AuditEvent.row_id).where(
            AuditEvent.action == "ticket.replied"))}
        db.session.remove()
    assert committed_ticket in replied and rolled_back not in replied
    new = _jobs(url)[before:]
    assert [(task, status) for _, task, status, _ in new] == [("mail.send", "todo")]
    assert new[0][3]["kind"] == "ticket_replied"


class HoldFirstDelivery:
    """An SMTP server's DATA handler: the first message is held until released, then refused (451)."""

    def __init__(self):
        self.first_arrived = threading.Event()
        self.release = threading.Event()
        self.accepted: list[bytes] = []
        self.calls = 0

    async def handle_DATA(self, server, session, envelope):
        self.calls += 1
        if self.calls == 1:
            self.first_arrived.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 Requested action aborted: the client went away"
        self.accepted.append(envelope.content)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(url: str, smtp_port: int, instance: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "WORKER_"))}
    env.update(DATABASE_URL=url, PUBLIC_BASE_URL="https://portal.example", SECRET_KEY="worker-tests",
               INSTANCE_PATH=str(instance), MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_port), MAIL_USE_TLS="0",
               WORKER_HEARTBEAT_SECONDS="1", WORKER_STALLED_SECONDS="2", WORKER_CONCURRENCY="1",
               PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "flask", "worker", "--queue", "mail"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(condition, seconds: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker exited early ({what}):\n{process.stdout.read()}")
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds} s for {what}")


def test_a_worker_killed_mid_mail_loses_nothing_and_sends_once_after_a_restart(committed, tmp_path):
    from aiosmtpd.controller import Controller

    app, url = committed
    for job_id, task, status, _ in _jobs(url):  # earlier tests' mails: not this test's business
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("DELETE FROM procrastinate_jobs WHERE id = %s", (job_id,))
    handler = HoldFirstDelivery()
    smtp = Controller(handler, hostname="127.0.0.1", port=_free_port())
    smtp.start()
    first = second = None
    try:
        _a_staff_reply(app, commit=True)
        first = _worker(url, smtp.port, tmp_path)
        _wait(handler.first_arrived.is_set, 90, "the first delivery to reach the mail server", first)
        first.kill()  # SIGKILL: no clean-up, mid-conversation
        first.wait(timeout=30)
        handler.release.set()
        [(_, task, status, _)] = _jobs(url)
        assert (task, status) == ("mail.send", "doing")  # stuck with a dead worker, not lost
        time.sleep(3)  # longer than WORKER_STALLED_SECONDS: the dead worker's heartbeat is stale
        second = _worker(url, smtp.port, tmp_path)
        _wait(lambda: handler.accepted, 90, "the mail to be sent after the restart", second)
        _wait(lambda: not _jobs(url), 30, "the job to finish", second)
        time.sleep(2)
        assert len(handler.accepted) == 1
        mail = handler.accepted[0].decode()
        assert "Please restart the printer." in mail and "https://portal.example/portal/tickets/" in mail
    finally:
        for process in (first, second):
            if process is None:
                continue
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            process.stdout.close()
        smtp.stop()
