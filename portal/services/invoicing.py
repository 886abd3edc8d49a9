"""Invoice generation: monthly fees, then approved billable time not yet invoiced (DESIGN.md "Invoices").

Support hours under a contract use up that contract's `included_hours` for each month first
(shown as lines at 0.00); the rest is billed at the contract's `hourly_rate_additional`. Project
work, and work for a customer without a contract, is billed at the entry's own `billing_rate`.
A time entry appears on one line of one invoice at most (a unique index guarantees it even when
two invoice runs race), so an entry that crosses the included-hours boundary gets one line with
only its billable hours, and says how much of it was included.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.models import (
    ApprovalStatus,
    ContractStatus,
    Customer,
    Invoice,
    InvoiceLineItem,
    LineItemType,
    ServiceContract,
    SupportTicket,
    TimeEntry,
)
from portal.services import audit
from portal.services.actors import Actor
from portal.services.errors import Invalid, NotFound
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


def generate_invoice(
    session, actor: Actor, request: InvoiceRequest, *, invoice_date: date, tax_rate: Decimal,
    payment_terms_days: int = 30,
) -> Invoice:
    """Draft an invoice for a customer and a period.

    :raises NotFound: no such customer.
    :raises Invalid: the period is reversed, or there is nothing to bill in it.
    """
    if request.period_end < request.period_start:
        raise Invalid("The period must end on or after its start.", "billing_period_end")
    customer = session.get(Customer, request.customer_id)
    if customer is None:
        raise NotFound("No such customer.", "customer_id")

    contracts = session.scalars(
        sa.select(ServiceContract)
        .where(
            ServiceContract.customer_id == customer.customer_id,
            ServiceContract.contract_status.in_([ContractStatus.ACTIVE, ContractStatus.EXPIRED]),
            ServiceContract.start_date <= request.period_end,
            ServiceContract.end_date >= request.period_start,
        )
        .order_by(ServiceContract.start_date)
    ).all()

    def contract_on(day: date) -> ServiceContract | None:
        return next((c for c in contracts if c.start_date <= day <= c.end_date), None)

    lines: list[InvoiceLineItem] = []
    if request.include_monthly_fees:
        for month in month_starts(request.period_start, request.period_end):
            contract = contract_on(month)
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

    included_left: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    seen_months: set[tuple[int, date]] = set()
    for entry, ticket_number, ticket_contract_id in entries:
        what = f"{ticket_number}" if ticket_number else (entry.project.project_number if entry.project else "")
        label = f"{entry.work_date:%b %d}: {what} {entry.description}".strip()[:400]
        contract = contract_on(entry.work_date) if entry.ticket_id else None
        if ticket_contract_id and contract and contract.contract_id != ticket_contract_id:
            contract = next((c for c in contracts if c.contract_id == ticket_contract_id), contract)
        if contract is None:
            lines.append(_work_line(entry, label, entry.hours_worked, entry.billing_rate))
            continue
        key = (contract.contract_id, entry.work_date.replace(day=1))
        if key not in seen_months:
            seen_months.add(key)
            included_left[key] = Decimal(contract.included_hours)
        included = min(included_left[key], entry.hours_worked)
        included_left[key] -= included
        billable = entry.hours_worked - included
        if billable == 0:
            lines.append(_work_line(entry, f"{label} (included in plan)", entry.hours_worked, Decimal("0.00")))
        elif included > 0:
            lines.append(_work_line(
                entry, f"{label} ({_hours(included)} h included, {_hours(billable)} h additional)",
                billable, contract.hourly_rate_additional,
            ))
        else:
            lines.append(_work_line(entry, label, billable, contract.hourly_rate_additional))

    if not lines:
        raise Invalid("There is nothing to bill for this customer in this period.", "billing_period_start")

    active = contract_on(request.period_end) or (contracts[-1] if contracts else None)
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
    audit.record(session, actor, "invoice.generated", table="invoices", row_id=invoice.invoice_id,
                 changes={"total_amount": (None, invoice.total_amount)})
    return invoice


def _work_line(entry: TimeEntry, description: str, quantity: Decimal, rate: Decimal) -> InvoiceLineItem:
    return InvoiceLineItem(
        item_type=LineItemType.HOURLY_WORK,
        time_entry_id=entry.entry_id,
        description=description,
        quantity=quantity,
        unit_price=rate,
        line_total=to_cents(quantity * rate),
    )
