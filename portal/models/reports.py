"""Summaries the reports and pages read instead of millions of rows: report_time_month kept current by triggers
(migration 0019); report_unbilled and report_uninvoiced_months rewritten by the worker every five minutes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base


class ReportTimeMonth(Base):
    """Approved hours per calendar month, customer and employee: the sum of time_entries' approved
    hours_worked by work_date's month, kept by statement triggers on time_entries (insert, update,
    delete, through transition tables). No foreign keys: it is derived data, and a row that falls
    to zero hours is deleted by the same trigger. The profitability report multiplies the hours by
    today's internal rates, so a rate change needs no recomputation."""

    __tablename__ = "report_time_month"

    month: Mapped[date] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    employee_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    approved_hours: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))


class ReportUnbilled(Base):
    """Unbilled work per customer (invoicing.unbilled_time: approved billable time on no live
    invoice line), recomputed by the worker every five minutes (scan.unbilled_work): the rule joins
    millions of entries to the invoice lines, too slow for a home page. The page says how fresh it is."""

    __tablename__ = "report_unbilled"

    customer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    hours: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    entries: Mapped[int]
    refreshed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


class ReportUninvoicedMonth(Base):
    """Approved billable work not yet invoiced per customer and month, by the usage page's rule (on no live
    line of an invoice the customer received: usage.not_invoiced), rewritten by the worker with
    report_unbilled (scan.unbilled_work, every five minutes; migration 0026). A contact reads its own
    customer's rows. The usage page's "other months" read it; the month it shows is always computed live."""

    __tablename__ = "report_uninvoiced_months"

    customer_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    month: Mapped[date] = mapped_column(primary_key=True)
    hours: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    entries: Mapped[int]
    refreshed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
