"""What the worker runs: the mails that events ask for, and the scheduled scans.

Every scan is idempotent (running it twice changes nothing the second time) and records each
change it makes in the audit log under the system's name.
"""

from __future__ import annotations

import logging
from pathlib import Path

import procrastinate
from flask import current_app
from procrastinate import RetryStrategy

from portal.extensions import db, mailer
from portal.jobs.queue import job_queue
from portal.jobs.runner import app_task, retry_stalled_jobs
from portal.services import backups, clock, contracts, invoice_runs, invoicing, notifications, tickets, webhooks
from portal.services.policy import Principal
from portal.web.links import public_url

log = logging.getLogger("portal.worker")

# A mail server that is down is tried again for about three hours (10 s, 20 s, 40 s, ...).
MAIL_RETRY = RetryStrategy(max_attempts=11, exponential_wait=10)
SCHEDULER = Principal.system("scheduler")


@app_task(notifications.MAIL_TASK, queue="mail", retry=MAIL_RETRY)
def send_mail(kind: str, **ids) -> int:
    """Build the mails of one event from the rows as they are now and send them; returns how many."""
    context = notifications.MailContext(link=public_url, secret_key=current_app.secret_key, now=clock.now())
    messages = [notifications.thread_mail(db.session, message, mailer.sender)
                for message in notifications.messages_for(db.session, kind, ids, context)]
    # Flushed first: a link token the mail carries must exist before anyone can click it, and a
    # reply quoting the Message-ID must find its ticket.
    db.session.flush()
    for message in messages:
        mailer.send_mail(message)
    return len(messages)


@app_task("mail.poll_mailbox", queue="mail_in", cron="* * * * *")
def poll_mailbox(timestamp: int | None = None) -> int | None:
    """Read the support mailbox (when IMAP_HOST is set): each new message becomes a ticket, a reply,
    an unmatched mail or is ignored (portal/jobs/mailbox.py); returns how many were read."""
    from portal.jobs import mailbox

    result = mailbox.poll(current_app._get_current_object())
    return None if result is None else result.processed


@app_task(webhooks.DELIVER_TASK, queue="webhooks")
def deliver_webhook(**args) -> str:
    """One attempt of a webhook delivery. Retries are new jobs deferred by the attempt itself (with
    its record, in its transaction), so the backoff schedule is the configuration's, not the queue's."""
    return webhooks.deliver(db.session, settings=webhooks.Settings.from_config(current_app.config), **args)


@app_task("scan.close_resolved", queue="scans", cron="*/5 * * * *")
def close_resolved_tickets(timestamp: int | None = None) -> int:
    """Close tickets resolved more than 7 days ago."""
    return tickets.close_resolved(db.session, SCHEDULER, now=clock.now())


@app_task("scan.overdue_invoices", queue="scans", cron="*/5 * * * *")
def mark_overdue_invoices(timestamp: int | None = None) -> int:
    """Sent invoices past their due date become overdue (`invoice.overdue`, once per invoice)."""
    return invoicing.mark_overdue(db.session, SCHEDULER, today=clock.today())


@app_task("scan.expiring_contracts", queue="scans", cron="*/5 * * * *")
def notify_expiring_contracts(timestamp: int | None = None) -> int:
    """`contract.expiring` 90, 60 and 30 days before a contract ends, once each."""
    return contracts.notify_expiring(db.session, SCHEDULER, today=clock.today())


@app_task(invoice_runs.RUN_TASK, queue="default", retry=RetryStrategy(max_attempts=5, exponential_wait=5))
def invoice_run_step(run_id: int, lane: int = 0) -> bool:
    """The next chunk of customers of a month-end run's lane (it defers the lane's next step until all are billed)."""
    return invoice_runs.run_step(db.session, run_id, lane=lane, tax_rate=current_app.config["TAX_RATE"])


# A backup that failed (disk full, database restarting) is tried twice more, 10 minutes apart.
BACKUP_RETRY = RetryStrategy(max_attempts=3, wait=600)


@app_task("maintenance.daily_backup", queue="default", retry=BACKUP_RETRY, cron="30 2 * * *")
def daily_backup(timestamp: int | None = None) -> str | None:
    """Once a day, when BACKUP_DIR is set: a backup there (portal.services.backups), keeping the last BACKUP_KEEP."""
    app = current_app._get_current_object()
    destination = app.config.get("BACKUP_DIR")
    if not destination:
        return None
    backup = backups.create_backup(app, Path(destination))
    log.info("%s", backup.summary())
    for gone in backups.prune(Path(destination), app.config["BACKUP_KEEP"]):
        log.info("Removed the old backup %s (BACKUP_KEEP=%s)", gone, app.config["BACKUP_KEEP"])
    return str(backup.path)


@job_queue.periodic(cron="* * * * *")
@job_queue.task(name="maintenance.retry_stalled_jobs", queue="default", pass_context=True)
async def retry_stalled(context: procrastinate.JobContext, timestamp: int) -> int:
    """Put back the jobs of a worker that died mid-job (killed, machine lost), so nothing is lost."""
    app = context.additional_context["flask_app"]
    return await retry_stalled_jobs(context.app, app.config["WORKER_STALLED_SECONDS"])


@app_task("scan.unbilled_work", queue="scans", cron="*/5 * * * *")
def refresh_unbilled_work(timestamp: int | None = None) -> int:
    """Recompute the unbilled work per customer that the account managers' home shows (report_unbilled), and
    the months not yet invoiced per customer that the portal's usage page lists (report_uninvoiced_months)."""
    from portal.services.reports.unbilled import refresh_unbilled

    return refresh_unbilled(db.session, clock.now())
