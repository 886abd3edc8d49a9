"""Invoice generation: monthly fees, then approved billable time not yet invoiced (DESIGN.md "Invoices").

Support hours under a contract use up that contract's `included_hours` for each month first
(shown as lines at 0.00); the rest is billed at the contract's `hourly_rate_additional`. Project
work, and work for a customer without a contract, is billed at the entry's own `billing_rate`.
A time entry appears on one line of one invoice at most (a unique index guarantees it even when
two invoice runs race), so an entry that crosses the included-hours boundary gets one line with
only its billable hours, and says how much of it was included.

`price_time` is that rule, once: invoices bill with it and the portal's contract usage estimates
the next invoice with it, so the two never disagree. A month's allowance is shared by every
invoice that bills work of that month: a second invoice in the same month starts from what the
first one left (`included_hours_invoiced`), never from a fresh allowance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from portal.models import (
    ApprovalStatus,
    ContractStatus,
    Customer,
    Invoice,
    InvoiceLineItem,
    InvoiceStatus,
    LineItemType,
    ServiceContract,
    SupportTicket,
    TimeEntry,
)
from portal.services import events, policy, statements
from portal.services.errors import Forbidden, Invalid, NotFound
from portal.services.money import to_cents
from portal.services.numbering import next_number


@dataclass(frozen=True)
class InvoiceRequest:
    customer_id: int
    period_start: date
    period_end: date
    include_monthly_fees: bool = True


def month_starts(start: date, end: date) -> list[date]:
    """The first day of every month that begins within [start, end]."""
    first = start.replace(day=1)
    if first < start:
        first = _add_month(first)
    months = []
    while first <= end:
        months.append(first)
        first = _add_month(first)
    return months


def _add_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _hours(value: Decimal) -> str:
    return f"{value.normalize():f}"


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    return _add_month(day.replace(day=1)) - timedelta(days=1)


INVOICE_RUN_LOCK = 7301  # the first key of the advisory lock an invoice run takes (the customer is the second)

# Invoices whose lines use up a month's included hours: every one but a cancelled invoice (which
# frees its time entries for a new invoice).
ALLOWANCE_STATUSES = (InvoiceStatus.DRAFT, InvoiceStatus.SENT, InvoiceStatus.PAID, InvoiceStatus.OVERDUE)
# Invoices the customer has received; a draft is not a bill yet (and contacts never see drafts).
ISSUED_STATUSES = (InvoiceStatus.SENT, InvoiceStatus.PAID, InvoiceStatus.OVERDUE)


@dataclass(frozen=True)
class PricedTime:
    """How an invoice bills one time entry: the hours its contract's monthly allowance covers, the
    hours billed, and the rate per billed hour (the contract's additional rate, or, for project
    work and work without a contract, the entry's own billing rate)."""

    entry: Any  # a TimeEntry, or a row with its entry_id, ticket_id, work_date, hours_worked, billing_rate
    contract: ServiceContract | None
    included: Decimal
    billable: Decimal
    rate: Decimal

    @property
    def amount(self) -> Decimal:
        return to_cents(self.billable * self.rate)


def billing_contracts(session, customer_id: int, start: date, end: date) -> list[ServiceContract]:
    """The customer's contracts that can bill work done in [start, end] (active or expired ones), oldest first."""
    return list(session.scalars(
        sa.select(ServiceContract)
        .where(
            ServiceContract.customer_id == customer_id,
            ServiceContract.contract_status.in_([ContractStatus.ACTIVE, ContractStatus.EXPIRED]),
            ServiceContract.start_date <= end,
            ServiceContract.end_date >= start,
        )
        .order_by(ServiceContract.start_date)
    ).all())


def contract_on(contracts: Sequence[ServiceContract], day: date) -> ServiceContract | None:
    return next((c for c in contracts if c.start_date <= day <= c.end_date), None)


def billing_contract(contracts: Sequence[ServiceContract], entry, ticket_contract_id: int | None
                     ) -> ServiceContract | None:
    """The contract whose allowance and rate apply to an entry: support (ticket) work only, under the
    contract covering its date, or the ticket's own contract when the ticket names another one."""
    if not entry.ticket_id:
        return None
    contract = contract_on(contracts, entry.work_date)
    if ticket_contract_id and contract and contract.contract_id != ticket_contract_id:
        contract = next((c for c in contracts if c.contract_id == ticket_contract_id), contract)
    return contract


def allowance_key(contract: ServiceContract, day: date) -> tuple[int, date]:
    """Included hours are per contract and calendar month."""
    return contract.contract_id, day.replace(day=1)


def price_time(entries: Iterable[tuple[Any, int | None]], contracts: Sequence[ServiceContract], *,
               already_included: dict[tuple[int, date], Decimal] | None = None) -> list[PricedTime]:
    """Price (entry, its ticket's contract_id) pairs in the order given (oldest work first), as an invoice bills them.

    Support work under a contract first uses what is left of that contract's `included_hours` for the
    entry's month (`already_included`: what earlier invoices used, see `included_hours_invoiced`), the
    rest at the contract's `hourly_rate_additional`; everything else at the entry's `billing_rate`.
    """
    used: dict[tuple[int, date], Decimal] = defaultdict(Decimal, already_included or {})
    priced = []
    for entry, ticket_contract_id in entries:
        contract = billing_contract(contracts, entry, ticket_contract_id)
        if contract is None:
            priced.append(PricedTime(entry, None, Decimal("0"), entry.hours_worked, entry.billing_rate))
            continue
        key = allowance_key(contract, entry.work_date)
        left = max(Decimal(contract.included_hours) - used[key], Decimal("0"))
        included = min(left, entry.hours_worked)
        used[key] += included
        priced.append(PricedTime(entry, contract, included, entry.hours_worked - included,
                                 contract.hourly_rate_additional))
    return priced


def included_on_line(hours_worked: Decimal, quantity: Decimal, unit_price: Decimal) -> Decimal:
    """The hours of an entry that its invoice line counted as included: a line bills only the hours
    beyond the allowance, at the contract's rate, or all of them at 0.00."""
    return hours_worked if unit_price == 0 else max(hours_worked - quantity, Decimal("0"))


def included_hours_invoiced(session, customer_id: int, contracts: Sequence[ServiceContract], start: date, end: date,
                            *, statuses: Sequence[InvoiceStatus] = ALLOWANCE_STATUSES
                            ) -> dict[tuple[int, date], Decimal]:
    """Included hours of each contract month touching [start, end] that invoices in `statuses` already used."""
    rows = session.execute(
        sa.select(TimeEntry.ticket_id, TimeEntry.work_date, TimeEntry.hours_worked, SupportTicket.contract_id,
                  InvoiceLineItem.quantity, InvoiceLineItem.unit_price)
        .join(InvoiceLineItem, InvoiceLineItem.time_entry_id == TimeEntry.entry_id)
        .join(Invoice, Invoice.invoice_id == InvoiceLineItem.invoice_id)
        .join(SupportTicket, SupportTicket.ticket_id == TimeEntry.ticket_id)
        .where(
            TimeEntry.customer_id == customer_id,
            TimeEntry.work_date.between(start.replace(day=1), month_end(end)),
            Invoice.invoice_status.in_(list(statuses)),
        )
    ).all()
    used: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    for row in rows:
        contract = billing_contract(contracts, row, row.contract_id)
        if contract is not None:
            used[allowance_key(contract, row.work_date)] += included_on_line(row.hours_worked, row.quantity,
                                                                             row.unit_price)
    return dict(used)


def generate_invoice(
    session, principal: policy.Principal, request: InvoiceRequest, *, invoice_date: date, tax_rate: Decimal,
    payment_terms_days: int = 30,
) -> Invoice:
    """Draft an invoice for a customer and a period.

    :raises Forbidden: only account managers and admins (and the system's runs) bill.
    :raises NotFound: no such customer.
    :raises Invalid: the period is reversed, or there is nothing to bill in it.
    """
    if not policy.may_bill(principal):
        raise Forbidden("Only account managers and administrators make invoices.")
    if request.period_end < request.period_start:
        raise Invalid("The period must end on or after its start.", "billing_period_end")
    customer = session.get(Customer, request.customer_id)
    if customer is not None:
        # One invoice run per customer at a time: what earlier invoices of a month used of its
        # included hours is read below, and two runs at once would both see none used.
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(INVOICE_RUN_LOCK, customer.customer_id)))
    if customer is None:
        raise NotFound("No such customer.", "customer_id")

    contracts = billing_contracts(session, customer.customer_id, request.period_start, request.period_end)

    lines: list[InvoiceLineItem] = []
    if request.include_monthly_fees:
        for month in month_starts(request.period_start, request.period_end):
            contract = contract_on(contracts, month)
            if contract and contract.monthly_fee > 0:
                lines.append(InvoiceLineItem(
                    item_type=LineItemType.MONTHLY_FEE,
                    description=(f"Monthly fee, {contract.service_tier.value} plan, "
                                 f"{month:%B %Y} ({contract.contract_number})"),
                    quantity=Decimal("1"),
                    unit_price=contract.monthly_fee,
                    line_total=contract.monthly_fee,
                ))

    already_billed = sa.select(InvoiceLineItem.time_entry_id).where(
        InvoiceLineItem.time_entry_id.is_not(None)
    )
    entries = session.execute(
        sa.select(TimeEntry, SupportTicket.ticket_number, SupportTicket.contract_id)
        .outerjoin(SupportTicket, SupportTicket.ticket_id == TimeEntry.ticket_id)
        .where(
            TimeEntry.customer_id == customer.customer_id,
            TimeEntry.approval_status == ApprovalStatus.APPROVED,
            TimeEntry.is_billable.is_(True),
            TimeEntry.work_date.between(request.period_start, request.period_end),
            TimeEntry.entry_id.not_in(already_billed),
        )
        .order_by(TimeEntry.work_date, TimeEntry.entry_id)
        .with_for_update(of=TimeEntry)
    ).all()

    already_included = included_hours_invoiced(session, customer.customer_id, contracts,
                                               request.period_start, request.period_end)
    numbers = {entry.entry_id: ticket_number for entry, ticket_number, _ in entries}
    for priced in price_time(((entry, ticket_contract_id) for entry, _, ticket_contract_id in entries), contracts,
                             already_included=already_included):
        entry = priced.entry
        ticket_number = numbers[entry.entry_id]
        what = f"{ticket_number}" if ticket_number else (entry.project.project_number if entry.project else "")
        label = f"{entry.work_date:%b %d}: {what} {entry.description}".strip()[:400]
        if priced.contract is None:
            lines.append(_work_line(entry, label, priced.billable, priced.rate))
        elif priced.billable == 0:
            lines.append(_work_line(entry, f"{label} (included in plan)", entry.hours_worked, Decimal("0.00")))
        elif priced.included > 0:
            lines.append(_work_line(
                entry, f"{label} ({_hours(priced.included)} h included, {_hours(priced.billable)} h additional)",
                priced.billable, priced.rate,
            ))
        else:
            lines.append(_work_line(entry, label, priced.billable, priced.rate))

    if not lines:
        raise Invalid("There is nothing to bill for this customer in this period.", "billing_period_start")

    active = contract_on(contracts, request.period_end) or (contracts[-1] if contracts else None)
    invoice = Invoice(
        invoice_number=next_number(session, "invoice", invoice_date),
        customer_id=customer.customer_id,
        contract_id=active.contract_id if active else None,
        invoice_date=invoice_date,
        due_date=invoice_date + timedelta(days=payment_terms_days),
        payment_terms=f"Net {payment_terms_days}",
        tax_rate=tax_rate,
    )
    session.add(invoice)
    session.flush()
    for line in lines:
        line.invoice_id = invoice.invoice_id
    session.add_all(lines)
    session.flush()
    session.refresh(invoice)  # the triggers set subtotal, tax and total
    events.emit(session, principal, "invoice.generated", invoice,
                {"invoice_id": invoice.invoice_id, "customer_id": invoice.customer_id,
                 "total_amount": str(invoice.total_amount)},
                changes={"total_amount": (None, invoice.total_amount)})
    return invoice


def mark_overdue(session, principal: policy.Principal, *, today: date) -> int:
    """Sent invoices past their due date become overdue, each with its `invoice.overdue` event; returns how many.

    Idempotent and safe to run twice at once: the UPDATE takes each row once (a second scan waits
    for the first and then finds the invoice overdue already), so the event is emitted once per
    invoice and status change.
    :raises Forbidden: only the system (or an admin, by hand) runs the scheduled scans.
    """
    if not policy.may_run_scheduled_work(principal):
        raise Forbidden("Only the scheduler or an administrator marks invoices overdue in bulk.")
    rows = session.execute(
        sa.update(Invoice).where(statements.becomes_overdue(today))
        .values(invoice_status=InvoiceStatus.OVERDUE)
        .returning(Invoice.invoice_id, Invoice.customer_id, Invoice.total_amount, Invoice.due_date)
        .execution_options(synchronize_session=False)).all()
    for row in sorted(rows):
        events.emit(session, principal, "invoice.overdue", ("invoices", row.invoice_id),
                    {"invoice_id": row.invoice_id, "customer_id": row.customer_id,
                     "total_amount": str(row.total_amount), "days_overdue": (today - row.due_date).days},
                    changes={"invoice_status": (InvoiceStatus.SENT, InvoiceStatus.OVERDUE)})
    return len(rows)


def _work_line(entry: TimeEntry, description: str, quantity: Decimal, rate: Decimal) -> InvoiceLineItem:
    return InvoiceLineItem(
        item_type=LineItemType.HOURLY_WORK,
        time_entry_id=entry.entry_id,
        description=description,
        quantity=quantity,
        unit_price=rate,
        line_total=to_cents(quantity * rate),
    )
