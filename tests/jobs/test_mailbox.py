"""Mail in against a real IMAP server (Debian's dovecot, started here with a throwaway maildir) and a
database that really commits: a new mail opens a ticket and moves to the processed folder; a reply
threads back by its headers and by the tag; an unknown sender is kept unmatched; an auto-reply and a
loop are ignored; two workers polling at once process each message once; a worker killed in the
middle of a message (before or after its commit) processes it, once, after a restart."""

from __future__ import annotations

import os
import subprocess
import sys
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from portal import create_app
from portal.extensions import db
from portal.models import Account, InboundMail, SupportTicket, TicketAttachment, TicketComment
from portal.services import auth, tickets
from tests import factories as f
from tests.dovecot import start_dovecot

ROOT = Path(__file__).resolve().parents[2]
PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


@pytest.fixture(scope="module")
def imap():
    server = start_dovecot()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def committed(pg, imap, tmp_path_factory):
    name = pg.create_database("techserv_mailbox")
    instance = tmp_path_factory.mktemp("mailbox-instance")
    config = {"TESTING": True, "SECRET_KEY": "mailbox-tests", "SQLALCHEMY_DATABASE_URI": pg.url_for(name),
              "MAIL_BACKEND": "memory", "MAIL_FROM": "TechServ Support <support@techserv.example>",
              "ATTACHMENTS_PATH": str(instance / "attachments"), **imap.settings()}
    app = create_app(config)
    with app.app_context():
        upgrade()
        customer = f.make_customer(db.session)
        f.make_contract(db.session, customer)
        f.make_contact_login(db.session, customer=customer, first_name="Jane", email="jane@customer.example")
        f.make_staff(db.session, role="senior_technician", email="sam@techserv.example")
        db.session.commit()
        db.session.remove()
    yield app, pg.libpq_url_for(name), instance
    with app.app_context():
        db.engine.dispose()
    pg.drop_database(name)


@pytest.fixture
def mailbox(committed, imap):
    imap.clear()
    yield imap
    imap.clear()


def mail(sender: str, subject: str, text: str, *, headers: dict | None = None, files=()) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@techserv.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="customer.example")
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(text)
    for file_name, data, maintype, subtype in files:
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=file_name)
    return message.as_bytes()


def poll(app):
    from portal.jobs import mailbox

    with app.app_context():
        try:
            return mailbox.poll(app)
        finally:
            db.session.remove()


def records(app, **where) -> list[InboundMail]:
    with app.app_context():
        rows = db.session.scalars(sa.select(InboundMail).filter_by(**where).order_by(InboundMail.inbound_mail_id)).all()
        db.session.expunge_all()
        db.session.remove()
        return rows


def _ticket_of(app, message_id: str):
    with app.app_context():
        ticket = db.session.scalar(sa.select(SupportTicket).join(InboundMail, InboundMail.ticket_id ==
                                                                  SupportTicket.ticket_id)
                                   .where(InboundMail.message_id == message_id))
        db.session.expunge_all()
        db.session.remove()
        return ticket


def test_a_new_mail_opens_a_ticket_and_moves_to_the_processed_folder(committed, mailbox):
    app, _, _ = committed
    raw = mail("Jane Doe <jane@customer.example>", "Printer jams", "It jams on every page.",
               files=[("screen.png", PNG, "image", "png")])
    mailbox.deliver(raw)
    result = poll(app)
    assert (result.processed, result.failed, result.outcomes) == (1, 0, {"ticketed": 1})
    assert (mailbox.count("INBOX"), mailbox.count("Processed")) == (0, 1)  # moved, never deleted
    message_id = mail_id(raw)
    ticket = _ticket_of(app, message_id)
    assert ticket.title == "Printer jams" and "every page" in ticket.description
    with app.app_context():
        files = db.session.scalars(sa.select(TicketAttachment.file_name)
                                   .where(TicketAttachment.ticket_id == ticket.ticket_id)).all()
        jobs = db.session.execute(sa.text("SELECT args FROM procrastinate_jobs WHERE task_name = 'mail.send'"
                                          " AND args->>'kind' = 'ticket_received'")).scalars().all()
        db.session.remove()
    assert files == ["screen.png"]
    assert {"kind": "ticket_received", "ticket_id": ticket.ticket_id, "to": "jane@customer.example"} in jobs
    # A second run finds nothing new.
    assert poll(app).processed == 0


def mail_id(raw: bytes) -> str:
    from email import message_from_bytes

    return message_from_bytes(raw)["Message-ID"]


def _technician_answers(app, ticket_id: int):
    """Sam answers in the staff pages; the worker sends the mail (threaded, its Message-ID stored)."""
    from portal.jobs.runner import TASK_BODIES, run_in_app
    import portal.jobs.tasks  # noqa: F401

    with app.app_context():
        session = db.session
        sam = auth.principal_for(session, session.scalar(sa.select(Account.account_id)
                                                         .where(Account.email == "sam@techserv.example")))
        ticket = session.get(SupportTicket, ticket_id)
        if ticket.status == "open":
            tickets.change_status(session, sam, ticket, "in_progress", expected_version=ticket.version)
        comment = tickets.add_comment(session, sam, ticket, "Which tray do you use?")
        session.commit()
        sent = app.extensions["mailer"]["outbox"]
        sent.clear()
        run_in_app(app, TASK_BODIES["mail.send"], {"kind": "ticket_replied", "comment_id": comment.comment_id})
        session.remove()
    [answer] = sent
    return answer


def test_a_reply_threads_back_by_its_headers_and_by_the_tag(committed, mailbox):
    app, _, _ = committed
    opening = mail("jane@customer.example", "Scanner offline", "The scanner is offline.")
    mailbox.deliver(opening)
    poll(app)
    ticket = _ticket_of(app, mail_id(opening))
    answer = _technician_answers(app, ticket.ticket_id)
    assert answer.in_reply_to and answer.message_id and f"[{ticket.ticket_number}]" in answer.subject

    by_headers = mail("jane@customer.example", "Re: your question",
                      "The lower tray.\n\nThanks,\nJane\n\nOn Tue, Dec 1, 2026 Sam wrote:\n> Which tray do you use?\n",
                      headers={"In-Reply-To": answer.message_id, "References": " ".join(answer.references)})
    by_tag = mail("jane@customer.example", f"AW: [{ticket.ticket_number}] New reply", "Also the upper one.")
    mailbox.deliver(by_headers)
    mailbox.deliver(by_tag)
    assert poll(app).outcomes == {"replied": 2}
    with app.app_context():
        bodies = db.session.scalars(sa.select(TicketComment.body).where(
            TicketComment.ticket_id == ticket.ticket_id, TicketComment.author_contact_id.is_not(None))
            .order_by(TicketComment.comment_id)).all()
        db.session.remove()
    assert bodies == ["The lower tray.", "Also the upper one."]  # quoted history and signature cut


def test_unknown_senders_auto_replies_and_loops(committed, mailbox):
    app, _, _ = committed
    stranger = mail("Bob <bob@prospect.example>", "A quote?", "Could you quote a firewall?")
    away = mail("jane@customer.example", "Out of office", "I am away.", headers={"Auto-Submitted": "auto-replied"})
    ours = mail("support@techserv.example", "[TKT-2026-000001] New reply", "Loop")
    for raw in (stranger, away, ours):
        mailbox.deliver(raw)
    assert poll(app).outcomes == {"unmatched": 1, "ignored": 2}
    assert [r.outcome for r in records(app, message_id=mail_id(stranger))] == ["unmatched"]
    assert (mailbox.count("INBOX"), mailbox.count("Processed")) == (0, 3)


def _poller(url: str, instance: Path, imap, stage: str | None = None) -> subprocess.Popen:
    """A worker process that polls once; with `stage`, it kills itself there (SIGKILL: no cleanup)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAIL_", "IMAP_", "WORKER_"))}
    env.update({k: str(v) for k, v in imap.settings().items()})
    env.update(DATABASE_URL=url, PUBLIC_BASE_URL="https://portal.example", SECRET_KEY="mailbox-tests",
               INSTANCE_PATH=str(instance), ATTACHMENTS_PATH=str(instance / "attachments"),
               MAIL_FROM="TechServ Support <support@techserv.example>", PYTHONUNBUFFERED="1")
    code = ("import os, signal, sys\n"
            "from portal import create_app\n"
            "from portal.jobs import mailbox\n"
            "app = create_app()\n"
            "stage = sys.argv[1] if len(sys.argv) > 1 else None\n"
            "def checkpoint(at, uid):\n"
            "    if at == stage:\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            "with app.app_context():\n"
            "    result = mailbox.poll(app, checkpoint=checkpoint)\n"
            "    print('busy' if result.busy else f'processed {result.processed}')\n")
    return subprocess.Popen([sys.executable, "-c", code, *([stage] if stage else [])], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_workers_polling_at_once_process_each_message_once(committed, mailbox):
    app, url, instance = committed
    raws = [mail("jane@customer.example", f"Alert {n}", f"Disk {n} is full.") for n in range(6)]
    for raw in raws:
        mailbox.deliver(raw)
    workers = [_poller(url, instance, mailbox) for _ in range(2)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    # Between them they moved each message once (the one that found the mailbox held says "busy").
    said = [line for output in outputs for line in output.splitlines() if line == "busy" or line.startswith("processed")]
    assert sum(int(line.split()[1]) for line in said if line != "busy") == 6, outputs
    ids = [mail_id(raw) for raw in raws]
    rows = [r for r in records(app) if r.message_id in ids]
    assert sorted(r.message_id for r in rows) == sorted(ids)  # each once
    assert {r.outcome for r in rows} == {"ticketed"}
    assert len({r.ticket_id for r in rows}) == 6
    assert (mailbox.count("INBOX"), mailbox.count("Processed")) == (0, 6)


@pytest.mark.parametrize("stage", ["processed", "committed"])
def test_a_worker_killed_mid_message_processes_it_once_after_a_restart(committed, mailbox, stage):
    app, url, instance = committed
    raw = mail("jane@customer.example", f"Killed at {stage}", "The server room is hot.")
    mailbox.deliver(raw)
    killed = _poller(url, instance, mailbox, stage)
    killed.communicate(timeout=120)
    assert killed.returncode == -9
    # Killed before its commit: nothing recorded; after it: recorded, but still in the inbox.
    assert len(records(app, message_id=mail_id(raw))) == (1 if stage == "committed" else 0)
    assert mailbox.count("INBOX") == 1
    restarted = _poller(url, instance, mailbox)
    output = restarted.communicate(timeout=120)[0]
    assert restarted.returncode == 0, output
    [record] = records(app, message_id=mail_id(raw))
    assert record.outcome == "ticketed"
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(SupportTicket)
                                  .where(SupportTicket.title == f"Killed at {stage}"))
        db.session.remove()
    assert count == 1
    assert (mailbox.count("INBOX"), mailbox.count("Processed")) == (0, 1)


def test_a_reader_skips_the_minute_while_another_holds_the_mailbox(committed, mailbox):
    import psycopg

    from portal.jobs.mailbox import LOCK_KEY

    app, url, _ = committed
    mailbox.deliver(mail("jane@customer.example", "Held", "While another worker reads."))
    with psycopg.connect(url, autocommit=True) as other_worker:
        other_worker.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        assert poll(app).busy
        assert mailbox.count("INBOX") == 1
        # The other worker is done. Released here, not by closing the connection: the server ends a
        # closed connection's backend (and frees its locks) a moment later, which made the next poll flaky.
        other_worker.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    assert poll(app).processed == 1
