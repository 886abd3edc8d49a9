"""The staff's invoices: the list, one invoice, and its life (issue 11).

draft -> edit (add an expense or a discount line, remove a line, which frees its entry or fee
month) -> delete, or send (the PDF is rendered once and kept in invoice_documents: what the
customer received never changes; the billing contacts are emailed by the worker) -> payments
(partial ones leave it sent; reaching the total marks it paid with paid_at; more than is owed is
refused) -> or cancel (the lines stay, not live: its entries and fee months may be billed again).

Every change locks the invoice's row first, so two clerks at once are serialised and the second
sees what the first did (a Conflict names it); every change is an event (audit row + outbox).
The generation rules are in services/invoicing.py, what a customer sees in services/statements.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import orm

from portal.models import (
    Contact,
    Customer,
    Invoice,
    InvoiceDocument,
    InvoiceLineItem,
    InvoiceStatus,
    LineItemType,
    Payment,
)
from portal.services import clock, events, policy
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.invoice_pdf import Issuer, render_invoice_pdf
from portal.services.money import format_money, to_cents
from portal.services.statements import LINE_TYPE_LABELS, invoice_totals, outstanding_amount
from portal.services.statuses import INVOICES_DUE

PER_PAGE = 25
ZERO = Decimal("0.00")
MAX_AMOUNT = Decimal("9999999999.99")

PAYMENT_METHODS = {"bank_transfer": "Bank transfer", "card": "Card", "check": "Check", "cash": "Cash",
                   "other": "Other"}
STATUS_LABELS = {InvoiceStatus.DRAFT: "Draft", InvoiceStatus.SENT: "Sent", InvoiceStatus.PAID: "Paid",
                 InvoiceStatus.OVERDUE: "Overdue", InvoiceStatus.CANCELLED: "Cancelled"}
EDITABLE_LINE_TYPES = (LineItemType.EXPENSE, LineItemType.DISCOUNT)


def _require(principal: policy.Principal) -> None:
    if not policy.may_bill(principal):
        raise Forbidden("Only account managers and administrators work with invoices.")


# --- the list --------------------------------------------------------------------------------

@dataclass(frozen=True)
class InvoiceFilters:
    q: str = ""
    status: InvoiceStatus | None = None
    customer_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1

    def as_args(self, **override) -> dict:
        values = {"q": self.q or None, "status": self.status.value if self.status else None,
                  "customer_id": self.customer_id, "date_from": self.date_from.isoformat() if self.date_from else None,
                  "date_to": self.date_to.isoformat() if self.date_to else None, "page": self.page}
        values.update(override)
        return {k: v for k, v in values.items() if v not in (None, "", 1) or (k == "page" and v != 1)}


@dataclass(frozen=True)
class InvoiceListRow:
    invoice: Invoice
    company_name: str
    outstanding: Decimal


@dataclass(frozen=True)
class InvoiceList:
    rows: list[InvoiceListRow]
    total: int  # at most COUNT_LIMIT: more is shown as "10,000+"
    page: int
    pages: int
    outstanding: Decimal  # over every invoice matching the filters

    @property
    def total_is_bounded(self) -> bool:
        return self.total >= COUNT_LIMIT


# The list counts its invoices up to here and says "10,000+" past it (counting 73,000 invoices of five
# years on every page cost 26 ms; a person narrows by customer, status or dates long before page 200).
COUNT_LIMIT = 10_000


def invoice_list(session, principal: policy.Principal, filters: InvoiceFilters) -> InvoiceList:
    """Invoices matching `filters`, newest first, PER_PAGE a page, in two queries.

    :raises Forbidden: not an account manager or admin.
    :raises Invalid: the date range is reversed.
    """
    _require(principal)
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        raise Invalid("The last day must be on or after the first.", "date_to")
    conditions = []
    if filters.q:
        escaped = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = f"%{escaped}%"
        conditions.append(sa.or_(Invoice.invoice_number.ilike(like), Customer.company_name.ilike(like)))
    if filters.status:
        conditions.append(Invoice.invoice_status == filters.status)
    if filters.customer_id:
        conditions.append(Invoice.customer_id == filters.customer_id)
    if filters.date_from:
        conditions.append(Invoice.invoice_date >= filters.date_from)
    if filters.date_to:
        conditions.append(Invoice.invoice_date <= filters.date_to)
    def matching(*columns):
        query = sa.select(*columns).select_from(Invoice)
        if filters.q:  # only the search reads the customer's name
            query = query.join(Customer, Customer.customer_id == Invoice.customer_id)
        return query.where(*conditions)

    # Bounded, newest first, from the index alone; what is owed is only on sent and overdue invoices
    # (their partial index), never a pass over every paid invoice.
    first = matching(Invoice.invoice_id).order_by(Invoice.invoice_date.desc(), Invoice.invoice_id.desc()) \
        .limit(COUNT_LIMIT).subquery()
    owed = matching(sa.func.greatest(Invoice.total_amount - Invoice.paid_amount, 0).label("owed")) \
        .where(Invoice.invoice_status.in_(INVOICES_DUE)).subquery()
    count, outstanding = session.execute(sa.select(
        sa.select(sa.func.count()).select_from(first).scalar_subquery(),
        sa.select(sa.func.coalesce(sa.func.sum(owed.c.owed), 0)).scalar_subquery())).one()
    pages = max(1, -(-count // PER_PAGE))
    page = min(max(filters.page, 1), pages)
    rows = session.execute(
        sa.select(Invoice, Customer.company_name)
        .join(Customer, Customer.customer_id == Invoice.customer_id).where(*conditions)
        .order_by(Invoice.invoice_date.desc(), Invoice.invoice_id.desc())
        .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return InvoiceList(rows=[InvoiceListRow(i, name, outstanding_amount(i)) for i, name in rows], total=count,
                       page=page, pages=pages, outstanding=Decimal(outstanding))


# --- one invoice -------------------------------------------------------------------------------

@dataclass(frozen=True)
class StaffInvoice:
    invoice: Invoice
    lines: list[InvoiceLineItem]
    payments: list[Payment]
    totals: object
    has_document: bool
    status_label: str
    line_labels: dict

    @property
    def is_draft(self) -> bool:
        return self.invoice.invoice_status == InvoiceStatus.DRAFT

    @property
    def may_pay(self) -> bool:
        return self.invoice.invoice_status in INVOICES_DUE

    @property
    def may_cancel(self) -> bool:
        return self.invoice.invoice_status in INVOICES_DUE and self.invoice.paid_amount == 0


def staff_invoice(session, principal: policy.Principal, invoice_id: int) -> StaffInvoice:
    """One invoice with its customer, contract, lines, payments and whether its PDF is kept, in three queries.

    :raises Forbidden: not an account manager or admin.
    :raises NotFound: no such invoice.
    """
    _require(principal)
    row = session.execute(
        sa.select(Invoice, sa.exists().where(InvoiceDocument.invoice_id == Invoice.invoice_id))
        .where(Invoice.invoice_id == invoice_id)
        .options(orm.joinedload(Invoice.customer), orm.joinedload(Invoice.contract),
                 orm.selectinload(Invoice.line_items))).one_or_none()
    if row is None:
        raise NotFound("No such invoice.")
    invoice, has_document = row
    payments = list(session.scalars(sa.select(Payment).where(Payment.invoice_id == invoice_id)
                                    .order_by(Payment.payment_date, Payment.payment_id)))
    lines = list(invoice.line_items)
    return StaffInvoice(invoice=invoice, lines=lines, payments=payments, totals=invoice_totals(invoice, lines),
                        has_document=bool(has_document), status_label=STATUS_LABELS[invoice.invoice_status],
                        line_labels=LINE_TYPE_LABELS)


def _locked(session, invoice_id: int) -> Invoice:
    invoice = session.scalar(sa.select(Invoice).where(Invoice.invoice_id == invoice_id).with_for_update()
                             .execution_options(populate_existing=True))
    if invoice is None:
        raise NotFound("No such invoice.")
    return invoice


def _must_be_draft(invoice: Invoice, doing: str) -> None:
    if invoice.invoice_status != InvoiceStatus.DRAFT:
        raise Conflict(f"{invoice.invoice_number} is {STATUS_LABELS[invoice.invoice_status].lower()} already: "
                       f"only a draft can be {doing}.")


def _refreshed(session, invoice: Invoice) -> Invoice:
    session.flush()
    session.refresh(invoice)  # the triggers keep subtotal, tax and total
    return invoice


# --- editing a draft -----------------------------------------------------------------------------

@dataclass(frozen=True)
class NewLine:
    item_type: LineItemType | None
    description: str
    quantity: Decimal | None
    unit_price: Decimal | None


def line_errors(line: NewLine) -> dict[str, str]:
    """What is wrong with a line to add, by field (no side effects; the page shows all at once)."""
    errors = {}
    if line.item_type not in EDITABLE_LINE_TYPES:
        errors["item_type"] = "Choose an expense or a discount."
    if not line.description:
        errors["description"] = "Say what the line is for; the customer reads it."
    elif len(line.description) > 500:
        errors["description"] = "Keep the description under 500 characters."
    if line.quantity is None:
        errors["quantity"] = "Enter a quantity, like 1."
    elif not Decimal("0") < line.quantity <= Decimal("999999") or line.quantity != line.quantity.quantize(
            Decimal("0.01")):
        errors["quantity"] = "Enter a quantity above 0 with at most two decimals."
    if line.unit_price is None:
        errors["unit_price"] = "Enter an amount, like 49.90."
    elif not Decimal("0") < line.unit_price <= Decimal("99999999.99") or line.unit_price != line.unit_price.quantize(
            Decimal("0.01")):
        errors["unit_price"] = "Enter an amount above 0 in dollars and cents."
    return errors


def add_line(session, principal: policy.Principal, invoice_id: int, line: NewLine) -> InvoiceLineItem:
    """Add an expense or a discount line to a draft.

    :raises Forbidden: not an account manager or admin.
    :raises NotFound: no such invoice.
    :raises Invalid: a field is wrong, or the discounts would exceed what the invoice charges.
    :raises Conflict: the invoice is no longer a draft.
    """
    _require(principal)
    errors = line_errors(line)
    if errors:
        field = next(iter(errors))
        raise Invalid(errors[field], field, errors)
    invoice = _locked(session, invoice_id)
    _must_be_draft(invoice, "changed")
    total = to_cents(line.quantity * line.unit_price)
    if line.item_type == LineItemType.DISCOUNT and total > invoice.subtotal:
        raise Invalid(f"A discount of {format_money(total)} would make the invoice negative: at most "
                      f"{format_money(invoice.subtotal)} can be taken off.", "unit_price")
    item = InvoiceLineItem(invoice_id=invoice.invoice_id, item_type=line.item_type, description=line.description,
                           quantity=line.quantity, unit_price=line.unit_price, line_total=total)
    session.add(item)
    _refreshed(session, invoice)
    events.emit(session, principal, "invoice.line_added", invoice,
                {"invoice_id": invoice.invoice_id, "line_item_id": item.line_item_id},
                changes={"line": (None, f"{line.item_type.value}: {line.description} {format_money(total)}"),
                         "total_amount": (None, invoice.total_amount)})
    return item


def remove_line(session, principal: policy.Principal, invoice_id: int, line_item_id: int) -> Invoice:
    """Remove a line from a draft; its time entry (or fee month) is free to bill again.

    :raises Forbidden: not an account manager or admin.
    :raises NotFound: no such invoice or line.
    :raises Invalid: the discounts left would exceed what the invoice charges.
    :raises Conflict: the invoice is no longer a draft.
    """
    _require(principal)
    invoice = _locked(session, invoice_id)
    _must_be_draft(invoice, "changed")
    line = session.scalar(sa.select(InvoiceLineItem).where(InvoiceLineItem.line_item_id == line_item_id,
                                                          InvoiceLineItem.invoice_id == invoice_id))
    if line is None:
        raise NotFound("No such line on this invoice.")
    if line.item_type != LineItemType.DISCOUNT and invoice.subtotal - line.line_total < 0:
        raise Invalid("Remove the discount first: without this line the discount would exceed the charges.")
    what = f"{line.item_type.value}: {line.description} {format_money(line.line_total)}"
    entry_id = line.time_entry_id
    session.delete(line)
    _refreshed(session, invoice)
    events.emit(session, principal, "invoice.line_removed", invoice,
                {"invoice_id": invoice.invoice_id, "time_entry_id": entry_id},
                changes={"line": (what, None), "total_amount": (None, invoice.total_amount)})
    return invoice


def delete_draft(session, principal: policy.Principal, invoice_id: int) -> str:
    """Delete a draft and its lines (its entries and fee months are free again); returns its number.

    :raises Forbidden: not an account manager or admin.
    :raises NotFound: no such invoice.
    :raises Conflict: the invoice is no longer a draft.
    """
    _require(principal)
    invoice = _locked(session, invoice_id)
    _must_be_draft(invoice, "deleted")
    number, customer_id, total = invoice.invoice_number, invoice.customer_id, invoice.total_amount
    events.emit(session, principal, "invoice.deleted", invoice, {"invoice_id": invoice_id, "customer_id": customer_id},
                changes={"invoice_number": (number, None), "total_amount": (total, None)})
    session.delete(invoice)  # its lines go with it (ON DELETE CASCADE)
    session.flush()
    return number


# --- sending ------------------------------------------------------------------------------------

def send_invoice(session, principal: policy.Principal, invoice_id: int, *, issuer: Issuer, static_folder,
                 now: datetime | None = None) -> Invoice:
    """Send a draft: its PDF is rendered now and kept (never changed), the billing contacts are emailed.

    :raises Forbidden: not an account manager or admin.
    :raises NotFound: no such invoice.
    :raises Invalid: the invoice has no lines.
    :raises Conflict: the invoice is no longer a draft (sent meanwhile by someone else).
    """
    _require(principal)
    now = now or clock.now()
    invoice = _locked(session, invoice_id)
    _must_be_draft(invoice, "sent")
    lines = list(session.scalars(sa.select(InvoiceLineItem).where(InvoiceLineItem.invoice_id == invoice_id)
                                 .order_by(InvoiceLineItem.line_item_id)))
    if not lines:
        raise Invalid("An invoice without lines cannot be sent: add a line or delete the draft.")
    invoice.invoice_status = InvoiceStatus.SENT
    invoice.sent_at = now
    session.flush()
    session.refresh(invoice)
    # The document shows the invoice as sent; rendering it here keeps it exactly what was emailed.
    keep_document(session, invoice, lines, issuer=issuer, static_folder=static_folder)
    events.emit(session, principal, "invoice.sent", invoice,
                {"invoice_id": invoice.invoice_id, "customer_id": invoice.customer_id,
                 "invoice_number": invoice.invoice_number, "total_amount": str(invoice.total_amount),
                 "due_date": invoice.due_date.isoformat()},
                changes={"invoice_status": (InvoiceStatus.DRAFT, InvoiceStatus.SENT), "sent_at": (None, now)})
    return invoice


def keep_document(session, invoice: Invoice, lines: list[InvoiceLineItem], *, issuer: Issuer,
                  static_folder) -> bytes:
    """Render the invoice's PDF and keep it (invoice_documents: written once, never changed)."""
    pdf = render_invoice_pdf(invoice, lines, issuer, static_folder=static_folder)
    session.add(InvoiceDocument(invoice_id=invoice.invoice_id, pdf=pdf, sha256=hashlib.sha256(pdf).hexdigest()))
    session.flush()
    return pdf


def drafts_in_period(session, principal: policy.Principal, customer_id: int, start: date, end: date
                     ) -> list[tuple[int, str]]:
    """(id, number) of the customer's drafts whose period overlaps [start, end]: where this period's
    work may be waiting already (a draft holds its lines until it is sent or deleted)."""
    _require(principal)
    return [tuple(row) for row in session.execute(
        sa.select(Invoice.invoice_id, Invoice.invoice_number)
        .where(Invoice.customer_id == customer_id, Invoice.invoice_status == InvoiceStatus.DRAFT,
               Invoice.period_start <= end, Invoice.period_end >= start)
        .order_by(Invoice.invoice_id))]


def kept_document(session, invoice_id: int) -> bytes | None:
    """The PDF kept when the invoice was sent (None for drafts and invoices sent before documents were kept)."""
    return session.scalar(sa.select(InvoiceDocument.pdf).where(InvoiceDocument.invoice_id == invoice_id))


def billing_recipients(session, customer_id: int) -> list[Contact]:
    """Who is emailed an invoice: the customer's billing contacts, or its primary contacts if it has none."""
    contacts = list(session.scalars(sa.select(Contact).where(Contact.customer_id == customer_id)
                                    .order_by(Contact.contact_id)))
    billing = [c for c in contacts if c.is_billing_contact]
    return billing or [c for c in contacts if c.is_primary_contact]


# --- payments and cancelling -----------------------------------------------------------------------

@dataclass(frozen=True)
class NewPayment:
    payment_date: date | None
    amount: Decimal | None
    method: str | None
    reference: str = ""


def payment_errors(payment: NewPayment, *, today: date) -> dict[str, str]:
    """What is wrong with a payment to record, by field (the invoice's balance is checked under its lock)."""
    errors = {}
    if payment.payment_date is None:
        errors["payment_date"] = "Enter the day the money arrived, as YYYY-MM-DD."
    elif payment.payment_date > today:
        errors["payment_date"] = "A payment cannot be recorded before it arrives: choose today or an earlier day."
    if payment.amount is None:
        errors["amount"] = "Enter the amount received, like 1,250.00."
    elif payment.amount <= 0 or payment.amount > MAX_AMOUNT or payment.amount != payment.amount.quantize(
            Decimal("0.01")):
        errors["amount"] = "Enter an amount above 0 in dollars and cents."
    if payment.method not in PAYMENT_METHODS:
        errors["method"] = "Choose how it was paid from the list."
    if len(payment.reference or "") > 100:
        errors["reference"] = "Keep the reference under 100 characters."
    return errors


def record_payment(session, principal: policy.Principal, invoice_id: int, payment: NewPayment, *,
                   today: date | None = None, now: datetime | None = None) -> Payment:
    """Record money received for a sent (or overdue) invoice; the sum reaching the total marks it paid.

    :raises Forbidden: not an account manager or admin.
    :raises NotFound: no such invoice.
    :raises Invalid: a field is wrong, or the amount is more than is still owed (nothing is recorded).
    :raises Conflict: the invoice is a draft, paid or cancelled.
    """
    _require(principal)
    today, now = today or clock.today(), now or clock.now()
    errors = payment_errors(payment, today=today)
    if errors:
        field = next(iter(errors))
        raise Invalid(errors[field], field, errors)
    invoice = _locked(session, invoice_id)
    if invoice.invoice_status not in INVOICES_DUE:
        raise Conflict(f"{invoice.invoice_number} is {STATUS_LABELS[invoice.invoice_status].lower()}: payments are "
                       "recorded for sent or overdue invoices only.")
    owed = invoice.total_amount - invoice.paid_amount
    if payment.amount > owed:
        raise Invalid(f"That is more than is owed: {format_money(owed)} is still outstanding on "
                      f"{invoice.invoice_number}. Record at most that; refund the rest.", "amount")
    if payment.payment_date < invoice.invoice_date:
        raise Invalid(f"The invoice is dated {invoice.invoice_date:%d %b %Y}: a payment for it cannot be earlier.",
                      "payment_date")
    row = Payment(invoice_id=invoice.invoice_id, customer_id=invoice.customer_id, payment_date=payment.payment_date,
                  amount=payment.amount, method=payment.method, reference=payment.reference or "",
                  recorded_by_employee_id=principal.employee_id)
    session.add(row)
    before = invoice.paid_amount
    invoice.paid_amount = before + payment.amount
    paid = invoice.paid_amount == invoice.total_amount
    old_status = invoice.invoice_status
    if paid:
        invoice.invoice_status = InvoiceStatus.PAID
        invoice.paid_at = now
    session.flush()
    data = {"invoice_id": invoice.invoice_id, "customer_id": invoice.customer_id, "payment_id": row.payment_id,
            "amount": str(payment.amount), "paid_amount": str(invoice.paid_amount),
            "total_amount": str(invoice.total_amount)}
    events.emit(session, principal, "invoice.payment_recorded", invoice, data,
                changes={"paid_amount": (before, invoice.paid_amount),
                         "payment": (None, f"{payment.payment_date} {format_money(payment.amount)} "
                                           f"{PAYMENT_METHODS[payment.method]} {payment.reference}".strip())})
    if paid:
        events.emit(session, principal, "invoice.paid", invoice, data,
                    changes={"invoice_status": (old_status, InvoiceStatus.PAID), "paid_at": (None, now)})
    return row


def cancel_invoice(session, principal: policy.Principal, invoice_id: int, *, now: datetime | None = None) -> Invoice:
    """Cancel a sent (or overdue) invoice without payments: its lines stay on it, its entries and fee months are free.

    :raises Forbidden: not an account manager or admin.
    :raises NotFound: no such invoice.
    :raises Conflict: a draft (delete it instead), paid, cancelled already, or with payments recorded.
    """
    _require(principal)
    now = now or clock.now()
    invoice = _locked(session, invoice_id)
    if invoice.invoice_status == InvoiceStatus.DRAFT:
        raise Conflict(f"{invoice.invoice_number} is a draft: delete it instead of cancelling it.")
    if invoice.invoice_status not in INVOICES_DUE:
        raise Conflict(f"{invoice.invoice_number} is {STATUS_LABELS[invoice.invoice_status].lower()}: only a sent or "
                       "overdue invoice can be cancelled.")
    if invoice.paid_amount > 0:
        raise Conflict(f"{format_money(invoice.paid_amount)} was paid on {invoice.invoice_number}: refund it before "
                       "cancelling, or credit the customer with a discount on the next invoice.")
    old = invoice.invoice_status
    invoice.invoice_status = InvoiceStatus.CANCELLED
    invoice.cancelled_at = now
    session.flush()
    events.emit(session, principal, "invoice.cancelled", invoice,
                {"invoice_id": invoice.invoice_id, "customer_id": invoice.customer_id,
                 "total_amount": str(invoice.total_amount)},
                changes={"invoice_status": (old, InvoiceStatus.CANCELLED), "cancelled_at": (None, now)})
    return invoice


def customer_choices(session, principal: policy.Principal) -> list[tuple[int, str]]:
    """(id, name) of every customer one could bill (active and suspended ones), by name."""
    _require(principal)
    return [(i, name) for i, name in session.execute(
        sa.select(Customer.customer_id, Customer.company_name)
        .where(Customer.account_status.in_(["active", "suspended"])).order_by(Customer.company_name))]

