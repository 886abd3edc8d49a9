"""A customer's invoices as the customer sees them: the list with what is outstanding, and one invoice.

Contacts see their own customer's sent, paid, overdue and cancelled invoices, never drafts (the
query says so, and row-level security says it again). What is outstanding is the unpaid rest of a
sent or overdue invoice; a paid or cancelled invoice owes nothing. Invoice generation, sending and
payments are staff work and live in services/invoicing.py. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import orm

from portal.models import Invoice, InvoiceDocument, InvoiceLineItem, InvoiceStatus, LineItemType
from portal.services import clock, policy
from portal.services.errors import Forbidden, NotFound
from portal.services.statuses import INVOICES_DUE, INVOICES_ISSUED

PER_PAGE = 25
MAX_PAGE = 10_000
ZERO = Decimal("0.00")

VISIBLE_STATUSES = INVOICES_ISSUED
DUE_STATUSES = INVOICES_DUE

# The list's status filter: value in the URL -> (label, statuses). "due" is what the home page's
# "invoices to pay" count links to.
STATUS_FILTERS: dict[str, tuple[str, tuple[InvoiceStatus, ...]]] = {
    "": ("All invoices", VISIBLE_STATUSES),
    "due": ("To pay (awaiting payment or overdue)", DUE_STATUSES),
    "sent": ("Awaiting payment", (InvoiceStatus.SENT,)),
    "overdue": ("Overdue", (InvoiceStatus.OVERDUE,)),
    "paid": ("Paid", (InvoiceStatus.PAID,)),
    "cancelled": ("Cancelled", (InvoiceStatus.CANCELLED,)),
}

# The words a customer reads for each status and line type.
STATUS_LABELS = {
    InvoiceStatus.SENT: "Awaiting payment",
    InvoiceStatus.OVERDUE: "Overdue",
    InvoiceStatus.PAID: "Paid",
    InvoiceStatus.CANCELLED: "Cancelled",
}
LINE_TYPE_LABELS = {
    LineItemType.HOURLY_WORK: "Hourly work",
    LineItemType.MONTHLY_FEE: "Monthly fee",
    LineItemType.EXPENSE: "Expense",
    LineItemType.DISCOUNT: "Discount",
}


def outstanding_amount(invoice: Invoice) -> Decimal:
    """What is still owed on `invoice`: the unpaid rest of a sent or overdue invoice, else nothing."""
    if invoice.invoice_status not in DUE_STATUSES:
        return ZERO
    return max(invoice.total_amount - invoice.paid_amount, ZERO)


def is_late(invoice: Invoice, today: date) -> bool:
    """The rule of when an invoice is late: overdue, or sent with its due date passed.

    A sent invoice turns overdue the day after its due date (`becomes_overdue`, run by the
    worker's scan); until the scan has run it is already shown late. Pages, the scan and the
    reports ask this (or its SQL twin), never the due date themselves.
    """
    return invoice.invoice_status == InvoiceStatus.OVERDUE or (
        invoice.invoice_status == InvoiceStatus.SENT and invoice.due_date < today)


def becomes_overdue(today: date):
    """SQL: a sent invoice whose due date has passed (the scan turns it overdue)."""
    return sa.and_(Invoice.invoice_status == InvoiceStatus.SENT, Invoice.due_date < today)


def days_overdue(invoice: Invoice, today: date) -> int | None:
    """Days since the due date of a late invoice; None for one that is not late."""
    return max((today - invoice.due_date).days, 0) if is_late(invoice, today) else None


def _outstanding_sql():
    """outstanding_amount() as a SQL expression, so sums are computed by the database."""
    return sa.case(
        (Invoice.invoice_status.in_(DUE_STATUSES),
         sa.func.greatest(Invoice.total_amount - Invoice.paid_amount, 0)),
        else_=0)


def status_filter(value: str | None) -> str:
    """The list's status filter from the URL; anything unknown means all invoices (never an error)."""
    value = (value or "").strip().lower()
    return value if value in STATUS_FILTERS else ""


def page_number(value: str | None) -> int:
    """A page number from the URL: a positive whole number, at most MAX_PAGE; anything else is page 1."""
    try:
        number = int(value or "")
    except ValueError:
        return 1
    return min(number, MAX_PAGE) if number > 0 else 1


@dataclass(frozen=True)
class InvoiceSummary:
    """What the customer owes across all its invoices (whatever the list's filter)."""

    outstanding: Decimal
    due_count: int
    overdue: Decimal
    overdue_count: int


@dataclass(frozen=True)
class InvoiceRow:
    invoice: Invoice
    outstanding: Decimal
    status_label: str
    days_overdue: int | None  # overdue invoices: days since the due date


@dataclass(frozen=True)
class InvoicePage:
    rows: list[InvoiceRow]
    total: int  # invoices matching the filter
    page: int
    pages: int
    status: str
    summary: InvoiceSummary


def _require_invoices(principal: policy.Principal) -> None:
    if not policy.may_see_company_invoices(principal):
        raise Forbidden("Only billing and primary contacts see the company's invoices.")


def _visible(principal: policy.Principal):
    """The conditions every query of a contact's invoices carries: its customer, never drafts."""
    return (Invoice.customer_id == principal.customer_id, Invoice.invoice_status.in_(VISIBLE_STATUSES))


def _row(invoice: Invoice, today: date) -> InvoiceRow:
    return InvoiceRow(invoice, outstanding_amount(invoice), STATUS_LABELS[invoice.invoice_status],
                      days_overdue(invoice, today))


def customer_invoices(session, principal: policy.Principal, *, status: str = "", page: int = 1,
                      today: date | None = None) -> InvoicePage:
    """The principal's customer's invoices, newest first, PER_PAGE a page, in two queries.

    `status` is a key of STATUS_FILTERS ("due" is sent and overdue); a page past the end shows the last.
    :raises Forbidden: the principal is not a billing or primary contact.
    """
    _require_invoices(principal)
    today = today or clock.today()
    status = status_filter(status)
    chosen = STATUS_FILTERS[status][1]
    outstanding = _outstanding_sql()
    overdue = Invoice.invoice_status == InvoiceStatus.OVERDUE
    due = Invoice.invoice_status.in_(DUE_STATUSES)
    totals = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(outstanding), 0),
            sa.func.count().filter(due),
            sa.func.coalesce(sa.func.sum(outstanding).filter(overdue), 0),
            sa.func.count().filter(overdue),
            sa.func.count().filter(Invoice.invoice_status.in_(chosen)),
        ).where(*_visible(principal))).one()
    summary = InvoiceSummary(outstanding=Decimal(totals[0]), due_count=totals[1],
                             overdue=Decimal(totals[2]), overdue_count=totals[3])
    matching = totals[4]
    pages = max(1, -(-matching // PER_PAGE))
    page = min(max(page, 1), pages)
    invoices = session.scalars(
        sa.select(Invoice).where(*_visible(principal), Invoice.invoice_status.in_(chosen))
        .order_by(Invoice.invoice_date.desc(), Invoice.invoice_id.desc())
        .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return InvoicePage(rows=[_row(invoice, today) for invoice in invoices], total=matching, page=page,
                       pages=pages, status=status, summary=summary)


@dataclass(frozen=True)
class InvoiceTotals:
    """The sums at the foot of an invoice. The database keeps subtotal, tax and total (errata 6:
    discount lines subtract); `charges` and `discount` split the subtotal for the reader."""

    charges: Decimal  # every line but discounts
    discount: Decimal  # the discount lines, as a positive amount
    subtotal: Decimal  # charges - discount, what tax is computed on
    tax_rate: Decimal
    tax_percent: str  # "8.25 %"
    tax_amount: Decimal
    total: Decimal
    paid: Decimal
    outstanding: Decimal


def invoice_totals(invoice: Invoice, lines: list[InvoiceLineItem]) -> InvoiceTotals:
    """The invoice's totals, its charges and discounts apart."""
    discount = sum((line.line_total for line in lines if line.item_type == LineItemType.DISCOUNT), ZERO)
    charges = sum((line.line_total for line in lines if line.item_type != LineItemType.DISCOUNT), ZERO)
    percent = f"{(invoice.tax_rate * 100).normalize():f} %"
    return InvoiceTotals(charges=charges, discount=discount, subtotal=invoice.subtotal,
                         tax_rate=invoice.tax_rate, tax_percent=percent, tax_amount=invoice.tax_amount,
                         total=invoice.total_amount, paid=invoice.paid_amount,
                         outstanding=outstanding_amount(invoice))


@dataclass(frozen=True)
class InvoiceStatement:
    """One invoice as the customer sees it, with everything its page and its PDF show."""

    invoice: Invoice
    lines: list[InvoiceLineItem]
    totals: InvoiceTotals
    status_label: str
    line_labels: dict[LineItemType, str]


def customer_kept_document(session, principal: policy.Principal, invoice_id: int) -> tuple[str, bytes] | None:
    """(invoice number, PDF) of one of the principal's customer's invoices whose document was kept when it
    was sent, in one statement; None when there is no such invoice or no kept document (customer_invoice
    then says which, and an older invoice is rendered from its statement).

    :raises Forbidden: the principal is not a billing or primary contact.
    """
    _require_invoices(principal)
    row = session.execute(
        sa.select(Invoice.invoice_number, InvoiceDocument.pdf)
        .join(InvoiceDocument, InvoiceDocument.invoice_id == Invoice.invoice_id)
        .where(Invoice.invoice_id == invoice_id, *_visible(principal))).first()
    return (row.invoice_number, row.pdf) if row else None


def customer_invoice(session, principal: policy.Principal, invoice_id: int) -> InvoiceStatement:
    """One of the principal's customer's invoices with its lines, customer and contract, in two queries.

    :raises Forbidden: the principal is not a billing or primary contact.
    :raises NotFound: no such invoice, a draft, or another customer's (the same answer on purpose).
    """
    _require_invoices(principal)
    invoice = session.scalar(
        sa.select(Invoice).where(Invoice.invoice_id == invoice_id, *_visible(principal))
        .options(orm.joinedload(Invoice.customer), orm.joinedload(Invoice.contract),
                 orm.selectinload(Invoice.line_items)))
    if invoice is None:
        raise NotFound("No such invoice.")
    lines = list(invoice.line_items)
    return InvoiceStatement(invoice=invoice, lines=lines, totals=invoice_totals(invoice, lines),
                            status_label=STATUS_LABELS[invoice.invoice_status], line_labels=LINE_TYPE_LABELS)
