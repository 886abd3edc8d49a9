"""Unbilled work: approved billable time on no live invoice line (invoicing.unbilled_time, billing's rule), per customer.

Read live it is an anti-join of every approved entry with the invoice lines (over a second on five
million entries), so the worker's scan.unbilled_work rewrites report_unbilled every five minutes
and the home page reads that, showing when it was refreshed. The same job rewrites the portal's
months not yet invoiced per customer (report_uninvoiced_months, the usage page's rule: drafts are
not invoices yet).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from portal.models import ReportUnbilled, ReportUninvoicedMonth, TimeEntry
from portal.services.money import to_cents
from portal.services.invoicing import unbilled_time


@dataclass(frozen=True)
class Unbilled:
    hours: Decimal
    amount: Decimal
    entries: int
    refreshed_at: datetime | None  # None: the worker has not computed it yet


def refresh_unbilled(session, now: datetime) -> int:
    """Rewrite report_unbilled from the time entries (the worker, every five minutes), and the portal's
    months not yet invoiced per customer (report_uninvoiced_months, usage's rule); returns report_unbilled's rows."""
    from portal.services.usage import uninvoiced_months_sql

    session.execute(sa.delete(ReportUninvoicedMonth))
    session.execute(sa.insert(ReportUninvoicedMonth).from_select(
        ["customer_id", "month", "hours", "entries", "refreshed_at"], uninvoiced_months_sql(now)))
    session.execute(sa.delete(ReportUnbilled))
    rows = (sa.select(TimeEntry.customer_id, sa.func.sum(TimeEntry.hours_worked),
                      sa.func.round(sa.func.sum(TimeEntry.hours_worked * TimeEntry.billing_rate), 2),
                      sa.func.count(), sa.literal(now, sa.DateTime(timezone=True)))
            .where(unbilled_time()).group_by(TimeEntry.customer_id))
    session.execute(sa.insert(ReportUnbilled).from_select(
        ["customer_id", "hours", "amount", "entries", "refreshed_at"], rows))
    # (An INSERT ... SELECT's rowcount is not reported here (-1): count what was written.)
    written = session.scalar(sa.select(sa.func.count()).select_from(ReportUnbilled))
    # An empty result still records when it was computed: a marker row for no customer.
    if not written:
        session.add(ReportUnbilled(customer_id=0, hours=0, amount=0, entries=0, refreshed_at=now))
        session.flush()
    return written


def unbilled_summary_sql():
    """SQL columns (hours, amount, entries, refreshed_at) of the whole summary, for a one-statement home page."""
    return (sa.select(sa.func.coalesce(sa.func.sum(ReportUnbilled.hours), 0),
                      sa.func.coalesce(sa.func.sum(ReportUnbilled.amount), 0),
                      sa.func.coalesce(sa.func.sum(ReportUnbilled.entries), 0),
                      sa.func.max(ReportUnbilled.refreshed_at)))


def unbilled_now(session) -> Unbilled:
    hours, amount, entries, at = session.execute(unbilled_summary_sql()).one()
    return Unbilled(Decimal(hours), to_cents(amount), int(entries), at)
