"""Overdue invoices with the seed's collection stages and the billing contacts (seed query 6,
corrected by errata 10): one row per invoice, its billing contacts listed (or none).

Late is statements.is_late's rule (common.late_invoice): overdue, or sent with its due date
passed. The outstanding amount is the unpaid rest (a partly paid invoice owes less than its total).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from portal.models import Contact, Customer, Invoice
from portal.services.errors import Invalid
from portal.services.money import format_money, to_cents
from portal.services.reports.common import Bar, Chart, Column, Report, late_invoice

NAME = "overdue"
TITLE = "Overdue invoices"
DESCRIPTION = "Late invoices by collection stage, with whom to call."
STAGES = ("Recently Overdue", "Overdue", "Seriously Overdue", "Collections Required")
FILTERS = (("stage", "Collection stage", "choice", None),)
COLUMNS = [Column("customer", "Customer"), Column("invoice_number", "Invoice"), Column("due_date", "Due", "date"),
           Column("days_overdue", "Days overdue", "number"), Column("collection_status", "Stage"),
           Column("total_amount", "Total", "money"), Column("outstanding_amount", "Outstanding", "money"),
           Column("billing_contacts", "Billing contacts")]


def stage(days: int) -> str:
    return STAGES[0] if days <= 7 else STAGES[1] if days <= 30 else STAGES[2] if days <= 60 else STAGES[3]


def _sql(today: date):
    contacts = (sa.select(sa.func.string_agg(Contact.email, aggregate_order_by(sa.literal("; "), Contact.email)))
                .where(Contact.customer_id == Invoice.customer_id, Contact.is_billing_contact.is_(True))
                .scalar_subquery())
    return (sa.select(Customer.company_name, Invoice.invoice_number, Invoice.due_date, Invoice.total_amount,
                      Invoice.paid_amount, (sa.cast(sa.literal(today), sa.Date) - Invoice.due_date).label("days"),
                      contacts.label("contacts"))
            .join(Customer, Customer.customer_id == Invoice.customer_id)
            .where(late_invoice(today))
            .order_by(Invoice.due_date, Invoice.invoice_number))


def parameters(args) -> dict:
    chosen = (args.get("stage") or "").strip()
    if chosen and chosen not in STAGES:
        raise Invalid("Choose one of the collection stages.", field="stage")
    return {"stage": chosen or None}


def build(session, principal, args, today: date) -> Report:
    params = parameters(args)
    rows = []
    for r in session.execute(_sql(today)):
        days = max(r.days, 0)
        rows.append({"customer": r.company_name, "invoice_number": r.invoice_number, "due_date": r.due_date,
                     "days_overdue": days, "collection_status": stage(days), "total_amount": to_cents(r.total_amount),
                     "outstanding_amount": to_cents(max(r.total_amount - r.paid_amount, Decimal(0))),
                     "billing_contacts": r.contacts or ""})
    count = Counter(row["collection_status"] for row in rows)
    owed = {s: sum((row["outstanding_amount"] for row in rows if row["collection_status"] == s), Decimal("0.00"))
            for s in STAGES}
    chart = Chart("Outstanding by collection stage", [
        Bar(s, ((f"stage{i}", float(owed[s])),), f"{format_money(owed[s])} in {count[s]} invoice{'' if count[s] == 1 else 's'}",
            short=f"{format_money(owed[s])} ({count[s]})")
        for i, s in enumerate(STAGES)], tuple((f"stage{i}", s) for i, s in enumerate(STAGES)), unit="$")
    summary = [("Late invoices", str(len(rows))), ("Outstanding", format_money(sum(owed.values(), Decimal("0.00"))))]
    if params["stage"]:
        rows = [row for row in rows if row["collection_status"] == params["stage"]]
    return Report(NAME, TITLE, params, today, COLUMNS, rows, chart, summary)


def overdue_total(session, today: date) -> tuple[int, Decimal]:
    """(how many, outstanding) of the late invoices (the account managers' home)."""
    row = session.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(
        sa.func.greatest(Invoice.total_amount - Invoice.paid_amount, 0)), 0)).where(late_invoice(today))).one()
    return row[0], to_cents(row[1])
