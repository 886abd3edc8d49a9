"""Invoice generation: the billing rules, one function each, and the draft they make (DESIGN.md "Invoices").

The rules (README "Billing rules"):
- `pricing_contract`: support work (an entry on a ticket) is priced by the contract in force on the
  entry's work date, whatever contract the ticket was opened under; project work and work on a day
  without a contract at the entry's own billing rate.
- `month_allowance` / `month_fee`: a contract in force for only part of a calendar month (it starts
  or ends inside it) gets that month's included hours and fee in proportion to its days in force,
  rounded half up to 0.25 h and to the cent.
- `allowance_used`: a contract month's included hours are used once across every invoice that bills
  that month (live lines record how much each used); `price_time` spends what is left, oldest work
  first, and bills the rest at the contract's additional rate.
- `fee_months`: a period bills the fee of every contract month whose days in force it touches, once:
  the partial unique index idx_line_items_fee_month over live lines holds it, not this code.
- A time entry is billed once (idx_line_items_time_entry over live lines); cancelling an invoice
  makes its lines not live (a trigger), which frees its entries and fee months.
- Tax is `to_cents(subtotal * tax_rate)`, half up (the database trigger computes the same).

`plan_invoice` computes the lines without writing (the staff preview shows exactly them);
`generate_invoice` takes the customer's lock, plans again and writes the draft. The portal's usage
page prices with the same `price_time`, so the two never disagree.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
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
    Project,
    ServiceContract,
    SupportTicket,
    TimeEntry,
)
from portal.services import events, policy, statements
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from portal.services.money import to_cents
from portal.services.numbering import next_number

ZERO = Decimal("0")
QUARTER_HOUR = Decimal("0.25")


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


def months_touching(start: date, end: date) -> list[date]:
    """The first day of every month with a day in [start, end]."""
    first, months = start.replace(day=1), []
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


# --- the rules ---------------------------------------------------------------------------------

def days_in_force(contract: ServiceContract, month: date) -> int:
    """How many days of `month` (any day of it) the contract is in force."""
    first, last = month.replace(day=1), month_end(month)
    start, end = max(first, contract.start_date), min(last, contract.end_date)
    return max((end - start).days + 1, 0)


def _share(contract: ServiceContract, month: date) -> tuple[int, int]:
    return days_in_force(contract, month), month_end(month).day


def month_allowance(contract: ServiceContract, month: date) -> Decimal:
    """The contract's included hours for `month`: all of them for a whole month, else prorated by days
    in force and rounded half up to a quarter hour."""
    days, of = _share(contract, month)
    if days == of:
        return Decimal(contract.included_hours)
    quarters = (Decimal(contract.included_hours) * days / of / QUARTER_HOUR).quantize(Decimal(1), ROUND_HALF_UP)
    return quarters * QUARTER_HOUR


def month_fee(contract: ServiceContract, month: date) -> Decimal:
    """The contract's fee for `month`: the monthly fee for a whole month, else prorated by days in force (cents)."""
    days, of = _share(contract, month)
    if days == of:
        return to_cents(contract.monthly_fee)
    return to_cents(contract.monthly_fee * days / of)


def tax_on(subtotal: Decimal, tax_rate: Decimal) -> Decimal:
    """Tax on a subtotal: half up to the cent (the database's trigger rounds the same way)."""
    return to_cents(subtotal * tax_rate)


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

    @property
    def month(self) -> date:
        return self.entry.work_date.replace(day=1)


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
    """The contract in force on `day` (the latest started, should two overlap)."""
    return next((c for c in reversed(contracts) if c.start_date <= day <= c.end_date), None)


def pricing_contract(contracts: Sequence[ServiceContract], entry) -> ServiceContract | None:
    """The contract whose allowance and rate price an entry: support (ticket) work only, under the
    contract in force on the entry's work date (not the one the ticket was opened under)."""
    if not entry.ticket_id:
        return None
    return contract_on(contracts, entry.work_date)


def billing_contract(contracts: Sequence[ServiceContract], entry, ticket_contract_id: int | None = None
                     ) -> ServiceContract | None:
    """Kept for callers of the old name: the ticket's contract no longer matters (see pricing_contract)."""
    return pricing_contract(contracts, entry)


def allowance_key(contract: ServiceContract, day: date) -> tuple[int, date]:
    """Included hours are per contract and calendar month."""
    return contract.contract_id, day.replace(day=1)


def fee_months(contracts: Sequence[ServiceContract], start: date, end: date) -> list[tuple[ServiceContract, date]]:
    """(contract, month) of every contract month with a fee whose days in force the period [start, end] touches."""
    months = []
    for month in months_touching(start, end):
        for contract in contracts:
            first = max(month, contract.start_date, start)
            last = min(month_end(month), contract.end_date, end)
            if first <= last and contract.monthly_fee > 0:
                months.append((contract, month))
    return months


def allowance_used(session, contract_ids: Iterable[int], months: Iterable[date], *,
                   statuses: Sequence[InvoiceStatus] = ALLOWANCE_STATUSES) -> dict[tuple[int, date], Decimal]:
    """Included hours of each (contract, month) that live lines of invoices in `statuses` used."""
    contract_ids, months = list(set(contract_ids)), list(set(months))  # empty: one cheap query all the same
    rows = session.execute(
        sa.select(InvoiceLineItem.contract_id, InvoiceLineItem.billing_month,
                  sa.func.sum(InvoiceLineItem.included_hours))
        .join(Invoice, Invoice.invoice_id == InvoiceLineItem.invoice_id)
        .where(InvoiceLineItem.live, InvoiceLineItem.contract_id.in_(contract_ids),
               InvoiceLineItem.billing_month.in_(months), InvoiceLineItem.included_hours > 0,
               Invoice.invoice_status.in_(list(statuses)))
        .group_by(InvoiceLineItem.contract_id, InvoiceLineItem.billing_month)).all()
    return {(contract_id, month): Decimal(hours) for contract_id, month, hours in rows}


def billed_fee_months(session, contract_ids: Iterable[int], months: Iterable[date]) -> set[tuple[int, date]]:
    """(contract, month) whose fee a live line bills already."""
    contract_ids, months = list(set(contract_ids)), list(set(months))
    return {(c, m) for c, m in session.execute(
        sa.select(InvoiceLineItem.contract_id, InvoiceLineItem.billing_month)
        .where(InvoiceLineItem.live, InvoiceLineItem.item_type == LineItemType.MONTHLY_FEE,
               InvoiceLineItem.contract_id.in_(contract_ids), InvoiceLineItem.billing_month.in_(months)))}


def price_time(entries: Iterable[tuple[Any, int | None]] | Iterable[Any], contracts: Sequence[ServiceContract], *,
               already_included: dict[tuple[int, date], Decimal] | None = None) -> list[PricedTime]:
    """Price entries in the order given (oldest work first), as an invoice bills them.

    Support work under a contract first uses what is left of that contract month's allowance
    (`month_allowance` less `already_included`: what earlier invoices used, see `allowance_used`),
    the rest at the contract's `hourly_rate_additional`; everything else at the entry's `billing_rate`.
    Entries may be given alone or as (entry, anything) pairs (the old callers' ticket contract).
    """
    used: dict[tuple[int, date], Decimal] = defaultdict(Decimal, already_included or {})
    priced = []
    for item in entries:
        entry = item[0] if isinstance(item, tuple) else item
        contract = pricing_contract(contracts, entry)
        if contract is None:
            priced.append(PricedTime(entry, None, ZERO, entry.hours_worked, entry.billing_rate))
            continue
        key = allowance_key(contract, entry.work_date)
        left = max(month_allowance(contract, entry.work_date) - used[key], ZERO)
        included = min(left, entry.hours_worked)
        used[key] += included
        priced.append(PricedTime(entry, contract, included, entry.hours_worked - included,
                                 contract.hourly_rate_additional))
    return priced


def included_on_line(hours_worked: Decimal, quantity: Decimal, unit_price: Decimal) -> Decimal:
    """The hours of an entry that an older invoice line counted as included (lines now store it)."""
    return hours_worked if unit_price == 0 else max(hours_worked - quantity, Decimal("0"))


# --- the plan and the draft ----------------------------------------------------------------------

@dataclass(frozen=True)
class PlannedLine:
    item_type: LineItemType
    description: str
    quantity: Decimal
    unit_price: Decimal
    time_entry_id: int | None = None
    contract_id: int | None = None
    billing_month: date | None = None
    included_hours: Decimal = ZERO

    @property
    def line_total(self) -> Decimal:
        return to_cents(self.quantity * self.unit_price)

    def row(self, invoice_id: int) -> dict:
        return {"invoice_id": invoice_id, "item_type": self.item_type, "description": self.description,
                "quantity": self.quantity, "unit_price": self.unit_price, "line_total": self.line_total,
                "time_entry_id": self.time_entry_id, "contract_id": self.contract_id,
                "billing_month": self.billing_month, "included_hours": self.included_hours}


@dataclass(frozen=True)
class InvoicePlan:
    """The lines an invoice for `request` would have, and its sums, before anything is written."""

    customer: Customer
    request: InvoiceRequest
    lines: list[PlannedLine]
    tax_rate: Decimal
    contract_id: int | None
    skipped_fee_months: list[tuple[str, date]] = field(default_factory=list)  # (contract number, month) billed already

    @property
    def subtotal(self) -> Decimal:
        return sum((-line.line_total if line.item_type == LineItemType.DISCOUNT else line.line_total
                    for line in self.lines), ZERO)

    @property
    def tax_amount(self) -> Decimal:
        return tax_on(self.subtotal, self.tax_rate)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax_amount

    @property
    def hours(self) -> Decimal:
        return sum((line.quantity + line.included_hours if line.unit_price else line.quantity
                    for line in self.lines if line.time_entry_id), ZERO)

    @property
    def fingerprint(self) -> str:
        """A digest of exactly these lines: the preview carries it, and generating refuses another plan."""
        text = "|".join(f"{line.item_type}:{line.time_entry_id}:{line.contract_id}:{line.billing_month}:"
                        f"{line.quantity}:{line.unit_price}:{line.included_hours}" for line in self.lines)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def _check_request(principal: policy.Principal, request: InvoiceRequest) -> None:
    if not policy.may_bill(principal):
        raise Forbidden("Only account managers and administrators make invoices.")
    if request.period_end < request.period_start:
        raise Invalid("The period must end on or after its start.", "billing_period_end")
    if (request.period_end - request.period_start).days > 366:
        raise Invalid("Bill at most a year at once.", "billing_period_end")


def live_line_of_entry():
    """SQL: this line is the time entry's live line. Spelled as idx_line_items_time_entry's predicate
    (`time_entry_id IS NOT NULL AND live`, not `live IS true`) so the planner proves it and probes
    that index per entry; otherwise, under a contact's row-level security, it scanned every line."""
    return sa.and_(InvoiceLineItem.time_entry_id == TimeEntry.entry_id, InvoiceLineItem.time_entry_id.is_not(None),
                   InvoiceLineItem.live)


def on_live_line():
    """SQL: the time entry is on a live invoice line (a draft's or a bill's; a cancelled invoice's are not live)."""
    return sa.exists().where(live_line_of_entry())


def unbilled_time():
    """SQL: approved billable time on no live invoice line: what the next invoice would bill (the one rule)."""
    return sa.and_(TimeEntry.approval_status == ApprovalStatus.APPROVED, TimeEntry.is_billable.is_(True),
                   ~on_live_line())


def plan_invoice(session, principal: policy.Principal, request: InvoiceRequest, *, tax_rate: Decimal,
                 lock_entries: bool = False) -> InvoicePlan:
    """The lines an invoice for `request` would have now, without writing anything.

    Fee lines first (one per contract month not billed yet), then one line per approved, billable
    entry of the period not on a live line, oldest work first.
    :raises Forbidden: only account managers and admins (and the system's runs) bill.
    :raises Invalid: the period is reversed or longer than a year.
    :raises NotFound: no such customer.
    """
    _check_request(principal, request)
    customer = session.get(Customer, request.customer_id)
    if customer is None:
        raise NotFound("No such customer.", "customer_id")
    start, end = request.period_start, request.period_end
    contracts = billing_contracts(session, customer.customer_id, start, end)
    contract_ids = [c.contract_id for c in contracts]
    lines: list[PlannedLine] = []
    skipped: list[tuple[str, date]] = []
    if request.include_monthly_fees:
        months = fee_months(contracts, start, end)
        billed = billed_fee_months(session, contract_ids, [m for _, m in months]) if months else set()
        for contract, month in months:
            if (contract.contract_id, month) in billed:
                skipped.append((contract.contract_number, month))
                continue
            days, of = _share(contract, month)
            share = "" if days == of else f", {days} of {of} days"
            lines.append(PlannedLine(
                item_type=LineItemType.MONTHLY_FEE,
                description=(f"Monthly fee, {str(contract.service_tier)} plan, "
                             f"{month:%B %Y} ({contract.contract_number}){share}"),
                quantity=Decimal("1"), unit_price=month_fee(contract, month),
                contract_id=contract.contract_id, billing_month=month))

    query = (
        sa.select(TimeEntry.entry_id, TimeEntry.ticket_id, TimeEntry.work_date, TimeEntry.hours_worked,
                  TimeEntry.billing_rate, TimeEntry.description, SupportTicket.ticket_number,
                  Project.project_number)
        .outerjoin(SupportTicket, SupportTicket.ticket_id == TimeEntry.ticket_id)
        .outerjoin(Project, Project.project_id == TimeEntry.project_id)
        .where(
            TimeEntry.customer_id == customer.customer_id,
            TimeEntry.approval_status == ApprovalStatus.APPROVED,
            TimeEntry.is_billable.is_(True),
            TimeEntry.work_date.between(start, end),
            ~on_live_line(),
        )
        .order_by(TimeEntry.work_date, TimeEntry.entry_id))
    if lock_entries:
        query = query.with_for_update(of=TimeEntry)
    entries = session.execute(query).all()

    supported = {e.work_date.replace(day=1) for e in entries if e.ticket_id}
    already = allowance_used(session, contract_ids, supported) if contract_ids and supported else {}
    for priced in price_time(entries, contracts, already_included=already):
        entry = priced.entry
        what = entry.ticket_number or entry.project_number or ""
        label = f"{entry.work_date:%b %d}: {what} {entry.description}".strip()[:400]
        common = {"item_type": LineItemType.HOURLY_WORK, "time_entry_id": entry.entry_id,
                  "billing_month": priced.month}
        if priced.contract is None:
            lines.append(PlannedLine(description=label, quantity=priced.billable, unit_price=priced.rate, **common))
            continue
        common.update(contract_id=priced.contract.contract_id, included_hours=priced.included)
        if priced.billable == 0:
            lines.append(PlannedLine(description=f"{label} (included in plan)", quantity=entry.hours_worked,
                                     unit_price=Decimal("0.00"), **common))
        elif priced.included > 0:
            lines.append(PlannedLine(
                description=f"{label} ({_hours(priced.included)} h included, {_hours(priced.billable)} h additional)",
                quantity=priced.billable, unit_price=priced.rate, **common))
        else:
            lines.append(PlannedLine(description=label, quantity=priced.billable, unit_price=priced.rate, **common))

    active = contract_on(contracts, end) or (contracts[-1] if contracts else None)
    return InvoicePlan(customer=customer, request=request, lines=lines, tax_rate=tax_rate,
                       contract_id=active.contract_id if active else None, skipped_fee_months=skipped)


def lock_customer_billing(session, customer_id: int) -> None:
    """One invoice run per customer at a time (until the transaction ends): what earlier invoices of a
    month used of its allowance is read next, and two runs at once would both see none used."""
    session.execute(sa.select(sa.func.pg_advisory_xact_lock(INVOICE_RUN_LOCK, customer_id)))


def generate_invoice(
    session, principal: policy.Principal, request: InvoiceRequest, *, invoice_date: date, tax_rate: Decimal,
    payment_terms_days: int = 30, expected_fingerprint: str | None = None,
) -> Invoice:
    """Draft an invoice for a customer and a period (its lines are `plan_invoice`'s).

    :raises Forbidden: only account managers and admins (and the system's runs) bill.
    :raises NotFound: no such customer.
    :raises Invalid: the period is reversed, or there is nothing to bill in it.
    :raises Conflict: `expected_fingerprint` (the preview's) no longer matches the lines.
    """
    _check_request(principal, request)
    lock_customer_billing(session, request.customer_id)
    plan = plan_invoice(session, principal, request, tax_rate=tax_rate, lock_entries=True)
    if expected_fingerprint is not None and plan.fingerprint != expected_fingerprint:
        raise Conflict("What there is to bill changed since the preview (someone billed or approved work "
                       "meanwhile). Check the new preview and generate again.", "billing_period_start")
    if not plan.lines:
        raise Invalid("There is nothing to bill for this customer in this period.", "billing_period_start")

    invoice = Invoice(
        invoice_number=next_number(session, "invoice", invoice_date),
        customer_id=plan.customer.customer_id,
        contract_id=plan.contract_id,
        invoice_date=invoice_date,
        due_date=invoice_date + timedelta(days=payment_terms_days),
        payment_terms=f"Net {payment_terms_days}",
        tax_rate=tax_rate,
        period_start=request.period_start,
        period_end=request.period_end,
    )
    session.add(invoice)
    session.flush()
    insert_lines(session, invoice.invoice_id, plan.lines)
    # The triggers set subtotal, tax and total (read again when next used); they equal the plan's.
    session.expire(invoice, ["subtotal", "tax_amount", "total_amount", "line_items", "updated_at"])
    events.emit(session, principal, "invoice.generated", invoice,
                {"invoice_id": invoice.invoice_id, "customer_id": invoice.customer_id,
                 "total_amount": str(plan.total),
                 "period_start": request.period_start.isoformat(), "period_end": request.period_end.isoformat()},
                changes={"total_amount": (None, plan.total),
                         "period": (None, f"{request.period_start} to {request.period_end}")})
    return invoice


def insert_lines(session, invoice_id: int, lines: Sequence[PlannedLine]) -> None:
    """Write planned lines in one statement (the triggers keep the invoice's totals and `live`)."""
    if not lines:
        return
    # One statement for all the lines, their values as arrays: not a statement per line (the totals
    # trigger runs once per statement) and not a VALUES list of thousands of parameters (compiling
    # and sending one took longer than the whole rest of the invoice).
    session.execute(INSERT_LINES, {
        "invoice_id": invoice_id,
        "item_types": [line.item_type.value for line in lines],
        "descriptions": [line.description for line in lines],
        "quantities": [line.quantity for line in lines],
        "unit_prices": [line.unit_price for line in lines],
        "line_totals": [line.line_total for line in lines],
        "entries": [line.time_entry_id for line in lines],
        "contracts": [line.contract_id for line in lines],
        "months": [line.billing_month for line in lines],
        "included": [line.included_hours for line in lines],
    })


INSERT_LINES = sa.text("""
    INSERT INTO invoice_line_items (invoice_id, item_type, description, quantity, unit_price, line_total,
                                    time_entry_id, contract_id, billing_month, included_hours)
    SELECT :invoice_id, t.item_type::line_item_type, t.description, t.quantity, t.unit_price, t.line_total,
           t.time_entry_id, t.contract_id, t.billing_month, t.included_hours
      FROM unnest(CAST(:item_types AS text[]), CAST(:descriptions AS text[]), CAST(:quantities AS numeric[]),
                  CAST(:unit_prices AS numeric[]), CAST(:line_totals AS numeric[]), CAST(:entries AS integer[]),
                  CAST(:contracts AS integer[]), CAST(:months AS date[]), CAST(:included AS numeric[]))
           WITH ORDINALITY AS t(item_type, description, quantity, unit_price, line_total, time_entry_id,
                                contract_id, billing_month, included_hours, n)
     ORDER BY t.n""")


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
