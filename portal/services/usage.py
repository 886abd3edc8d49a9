"""Contract usage for a contact: a month's included hours, what is used, what is left, and the work
not yet invoiced, priced by the invoicing rules (services/invoicing.py) so the portal and the
invoice never disagree.

Only the customer's prices appear (the contract's fee and additional rate, each entry's client
billing rate through the estimate); never an employee's internal rate, a rejection or a note.
Who sees what is policy.usage_view: every contact the hours; the money only billing and primary
contacts (for the others it is left out, None); the listed entries only of tickets the contact may
open (its own; all for a primary contact) and of projects for sponsors and primary contacts, a
condition in the queries themselves.
A draft invoice has not reached the customer (contacts never see drafts), so the work on it still
shows as "not yet invoiced": the draft is the next invoice that will carry it. Four queries,
whatever the number of entries: the contracts, the month's entries (hours only), one page of the
not-yet-invoiced list, and the other months with work not yet invoiced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.models import (
    ApprovalStatus,
    Invoice,
    InvoiceLineItem,
    InvoiceStatus,
    Project,
    ReportUninvoicedMonth,
    ServiceContract,
    ServiceTier,
    SupportTicket,
    TimeEntry,
)
from portal.services import policy
from portal.services.errors import Forbidden, Invalid
from portal.services.invoicing import (
    ISSUED_STATUSES,
    PricedTime,
    billing_contracts,
    contract_on,
    live_line_of_entry,
    month_allowance,
    month_end,
    price_time,
    pricing_contract,
)
from portal.services.money import to_cents

PER_PAGE = 50
EARLIEST_MONTH = date(2000, 1, 1)
MONTH_PATTERN = re.compile(r"(\d{4})-(\d{2})")
ZERO = Decimal("0")


@dataclass(frozen=True)
class UnbilledRow:
    """One entry of work not yet invoiced, as the customer may see it."""

    entry_id: int
    work_date: date
    hours: Decimal
    description: str
    ticket_id: int | None
    ticket_number: str | None
    ticket_title: str | None
    project_number: str | None
    project_name: str | None
    included: Decimal  # hours the plan covers
    estimate: Decimal | None  # what the invoice will charge for it (None: this contact sees no money)

    @property
    def fully_included(self) -> bool:
        return self.included == self.hours


@dataclass(frozen=True)
class UsageContract:
    """The contract as the contact may see it: its fee and extra-hour rate are None for contacts
    who see no money (policy.usage_view)."""

    contract_id: int
    contract_number: str
    service_tier: ServiceTier
    included_hours: int
    start_date: date
    end_date: date
    monthly_fee: Decimal | None
    hourly_rate_additional: Decimal | None

    @classmethod
    def of(cls, contract: ServiceContract, money: bool) -> "UsageContract":
        return cls(contract.contract_id, contract.contract_number, contract.service_tier, contract.included_hours,
                   contract.start_date, contract.end_date, contract.monthly_fee if money else None,
                   contract.hourly_rate_additional if money else None)


@dataclass(frozen=True)
class ContractUsage:
    month: date  # the first day of the month shown
    today: date
    contract: UsageContract | None  # the contract on the month's reference day
    included: Decimal  # the contract's included hours for the month (0 without a contract)
    approved: Decimal  # approved billable support hours of the month under that contract
    pending: Decimal  # support hours of the month still waiting for approval
    left: Decimal  # included hours not yet used (never negative)
    over: Decimal  # approved hours beyond the included ones, billed at the additional rate
    rows: list[UnbilledRow]  # one page of the month's work not yet invoiced that this contact may see listed
    page: int
    pages: int
    unbilled_count: int  # entries of the month's work not yet invoiced, the whole company's
    unbilled_hours: Decimal
    estimate: Decimal | None  # what the next invoice will charge for that work (None: no money for this contact)
    other_months: list[tuple[date, Decimal]]  # (month, hours) of other months' work not yet invoiced
    other_months_at: datetime | None = None  # when the worker counted them (report_uninvoiced_months)
    listed_count: int = 0  # of unbilled_count, the entries this contact sees listed
    view: policy.UsageView = policy.UsageView(money=False, all_tickets=False, projects=False)

    @property
    def lists_everything(self) -> bool:
        """Every entry of the company's work is listed (a primary contact)."""
        return self.view.all_tickets and self.view.projects

    @property
    def is_current_month(self) -> bool:
        return self.month == self.today.replace(day=1)

    @property
    def previous_month(self) -> date | None:
        if self.month <= EARLIEST_MONTH:
            return None
        return (self.month.replace(day=1) - timedelta(days=1)).replace(day=1)

    @property
    def next_month(self) -> date | None:
        """None when the next month is still in the future."""
        following = month_end(self.month) + timedelta(days=1)
        return following if following <= self.today else None

    @property
    def over_pending(self) -> Decimal:
        """Hours that would be billed beyond the plan if the pending hours are approved as they are."""
        return max(self.approved + self.pending - self.included, ZERO) - self.over

    @property
    def bar(self) -> list[tuple[str, Decimal, Decimal]]:
        """The usage bar as (part, start %, width %): approved within the plan, approved over it,
        pending, and what is left; its full length is the allowance or the hours used, if more."""
        scale = max(self.included, self.approved + self.pending)
        if scale == 0:
            return []
        parts, start = [], ZERO
        for part, hours in (("approved", min(self.approved, self.included) if self.contract else self.approved),
                            ("over", self.over), ("pending", self.pending),
                            # What is left once the pending hours are approved too (they are drawn already).
                            ("left", max(self.left - self.pending, ZERO))):
            width = (hours * 100 / scale).quantize(Decimal("0.01"))
            if width > 0:
                parts.append((part, start, width))
                start += width
        return parts

    @property
    def included_mark(self) -> Decimal | None:
        """Where the allowance ends on the bar (%), when the hours used run past it."""
        scale = self.approved + self.pending
        if not self.contract or self.included == 0 or scale <= self.included:
            return None
        return (self.included * 100 / scale).quantize(Decimal("0.01"))


def parse_month(value: str | None, *, today: date) -> date:
    """The first day of the month named "YYYY-MM" (this month when empty).

    :raises Invalid: not a month, before 2000, or in the future.
    """
    current = today.replace(day=1)
    if value is None or not value.strip():
        return current
    match = MONTH_PATTERN.fullmatch(value.strip())
    month = None
    if match and 1 <= int(match.group(2)) <= 12 and int(match.group(1)) >= 1:  # date() has no year 0
        month = date(int(match.group(1)), int(match.group(2)), 1)
    if month is None:
        raise Invalid("Choose a month as year and month, for example "
                      f"{current:%Y-%m} for {current:%B %Y}.", "month")
    if month > current:
        raise Invalid(f"There is no usage yet for {month:%B %Y}: choose {current:%B %Y} or an earlier month.",
                      "month")
    if month < EARLIEST_MONTH:
        raise Invalid("Choose a month from January 2000 onwards.", "month")
    return month


def not_invoiced():
    """The entry is on no line of an invoice the customer received (drafts are not bills yet)."""
    return ~sa.exists().where(
        live_line_of_entry(),
        InvoiceLineItem.invoice_id == Invoice.invoice_id,
        Invoice.invoice_status != InvoiceStatus.DRAFT,
    )


def _listed(principal: policy.Principal, view: policy.UsageView):
    """The SQL condition for an entry this contact sees listed (TimeEntry outer-joined to its SupportTicket)."""
    on_ticket = TimeEntry.ticket_id.is_not(None)
    if not view.all_tickets:
        on_ticket = sa.and_(on_ticket, SupportTicket.contact_id == principal.contact_id)
    return sa.or_(on_ticket, TimeEntry.project_id.is_not(None)) if view.projects else on_ticket


def contract_usage(session, principal: policy.Principal, *, today: date, month: str | None = None,
                   page: int | None = 1) -> ContractUsage:
    """The usage of the contact's customer for `month` ("YYYY-MM"; this month by default), as
    policy.usage_view lets this contact see it.

    :raises Forbidden: the principal is not a contact.
    :raises Invalid: `month` is not a month, or is in the future (field "month").
    """
    if not policy.may_see_contract_usage(principal):
        raise Forbidden("Contract usage is for the customer's contacts.")
    view = policy.usage_view(principal)
    listed = _listed(principal, view)
    first = parse_month(month, today=today)
    last = month_end(first)
    customer_id = principal.customer_id
    contracts = billing_contracts(session, customer_id, first, last)
    if first == today.replace(day=1):
        contract = contract_on(contracts, today)
    else:  # a past month: the contract at its end, or the last one that covered some of it
        contract = contract_on(contracts, last) or (contracts[-1] if contracts else None)

    # The month's billable work that is approved or waiting, summed per day, kind of work (min(ticket_id)
    # is None for project work: pricing_contract reads it as the entry's), approval and invoice line; an
    # entry is on at most one live line. A month of the largest customer holds 40,000 entries: summed
    # here, not read one by one (0.8 s a page before). Only the work not yet invoiced is read entry by
    # entry, below, as the invoice would price it.
    issued = sa.and_(Invoice.invoice_id == InvoiceLineItem.invoice_id, Invoice.invoice_status != InvoiceStatus.DRAFT)
    month_work = [
        TimeEntry.customer_id == customer_id,
        TimeEntry.work_date.between(first, last),
        TimeEntry.is_billable.is_(True),
    ]
    on_ticket = TimeEntry.ticket_id.is_not(None)
    groups = session.execute(
        sa.select(TimeEntry.work_date, sa.func.min(TimeEntry.ticket_id).label("ticket_id"), TimeEntry.approval_status,
                  InvoiceLineItem.contract_id.label("line_contract_id"), Invoice.invoice_status,
                  sa.func.sum(TimeEntry.hours_worked).label("hours"),
                  sa.func.coalesce(sa.func.sum(InvoiceLineItem.included_hours), 0).label("included_hours"))
        .outerjoin(InvoiceLineItem, live_line_of_entry())
        .outerjoin(Invoice, issued)
        .where(*month_work, TimeEntry.approval_status.in_([ApprovalStatus.APPROVED, ApprovalStatus.PENDING]))
        .group_by(TimeEntry.work_date, on_ticket, TimeEntry.approval_status, InvoiceLineItem.contract_id,
                  Invoice.invoice_status)
    ).all()

    approved = pending = ZERO
    already_included: dict[tuple[int, date], Decimal] = {}
    any_unbilled = False
    for group in groups:
        group_contract = pricing_contract(contracts, group)
        counts = group.ticket_id is not None and (
            contract is None or (group_contract is not None and group_contract.contract_id == contract.contract_id))
        if group.approval_status == ApprovalStatus.PENDING:
            pending += group.hours if counts else ZERO
            continue
        approved += group.hours if counts else ZERO
        if group.invoice_status is None:
            any_unbilled = True
        elif group.invoice_status in ISSUED_STATUSES and group.line_contract_id is not None:
            key = (group.line_contract_id, group.work_date.replace(day=1))
            already_included[key] = already_included.get(key, ZERO) + group.included_hours
        # A cancelled invoice's line is not live: its entry is not yet invoiced again.

    # The work not yet invoiced, entry by entry in the order an invoice prices it (oldest first).
    unbilled = session.execute(
        sa.select(TimeEntry.entry_id, TimeEntry.ticket_id, TimeEntry.work_date, TimeEntry.hours_worked,
                  TimeEntry.billing_rate, sa.case((listed, True), else_=False).label("listed"))
        .outerjoin(SupportTicket, SupportTicket.ticket_id == TimeEntry.ticket_id)
        .where(*month_work, TimeEntry.approval_status == ApprovalStatus.APPROVED, not_invoiced())
        .order_by(TimeEntry.work_date, TimeEntry.entry_id)).all() if any_unbilled else []
    listed_count = sum(row.listed for row in unbilled)

    priced: dict[int, PricedTime] = {p.entry.entry_id: p for p in
                                     price_time(unbilled, contracts, already_included=already_included)}
    included = month_allowance(contract, first) if contract else ZERO
    pages = max(1, -(-listed_count // PER_PAGE))
    page = max(1, min(page or 1, pages))
    rows = (_unbilled_page(session, customer_id, first, last, page, priced, listed, view.money)
            if listed_count else [])
    other_months, other_months_at = _other_unbilled_months(session, customer_id, first, today)
    return ContractUsage(
        month=first, today=today, contract=UsageContract.of(contract, view.money) if contract else None,
        included=included, approved=approved, pending=pending,
        left=max(included - approved, ZERO) if contract else ZERO,
        over=max(approved - included, ZERO) if contract else ZERO,
        rows=rows, page=page, pages=pages, unbilled_count=len(priced),
        unbilled_hours=sum((p.entry.hours_worked for p in priced.values()), ZERO),
        estimate=to_cents(sum((p.amount for p in priced.values()), ZERO)) if view.money else None,
        other_months=other_months, other_months_at=other_months_at, listed_count=listed_count, view=view,
    )


def _other_unbilled_months(session, customer_id: int, shown: date,
                           today: date) -> tuple[list[tuple[date, Decimal]], datetime | None]:
    """The twelve latest other months up to today holding approved billable work not yet invoiced, and
    when they were counted: from report_uninvoiced_months, which the worker rewrites every five minutes
    (reports.unbilled.refresh_unbilled). Read live it checked every approved entry of the customer's
    history against the invoice lines (7.8 s for the largest customer of the large data set)."""
    rows = session.execute(
        sa.select(ReportUninvoicedMonth.month, ReportUninvoicedMonth.hours, ReportUninvoicedMonth.refreshed_at)
        .where(ReportUninvoicedMonth.customer_id == customer_id, ReportUninvoicedMonth.month != shown,
               ReportUninvoicedMonth.month <= today)
        .order_by(ReportUninvoicedMonth.month.desc()).limit(12)).all()
    return [(row.month, row.hours) for row in rows], min((row.refreshed_at for row in rows), default=None)


def uninvoiced_months_sql(now: datetime):
    """SELECT customer_id, month, hours, entries, refreshed_at: every customer's months with approved
    billable work not yet invoiced (the worker writes it to report_uninvoiced_months)."""
    month = sa.func.date_trunc("month", TimeEntry.work_date).cast(sa.Date)
    return (sa.select(TimeEntry.customer_id, month, sa.func.sum(TimeEntry.hours_worked), sa.func.count(),
                      sa.literal(now, sa.DateTime(timezone=True)))
            .where(TimeEntry.is_billable.is_(True), TimeEntry.approval_status == ApprovalStatus.APPROVED,
                   not_invoiced())
            .group_by(TimeEntry.customer_id, month))


def _unbilled_page(session, customer_id: int, first: date, last: date, page: int,
                   priced: dict[int, PricedTime], listed, money: bool) -> list[UnbilledRow]:
    result = session.execute(
        sa.select(TimeEntry.entry_id, TimeEntry.work_date, TimeEntry.hours_worked, TimeEntry.description,
                  SupportTicket.ticket_id, SupportTicket.ticket_number, SupportTicket.title,
                  Project.project_number, Project.project_name)
        .outerjoin(SupportTicket, SupportTicket.ticket_id == TimeEntry.ticket_id)
        .outerjoin(Project, Project.project_id == TimeEntry.project_id)
        .where(
            TimeEntry.customer_id == customer_id,
            TimeEntry.work_date.between(first, last),
            TimeEntry.is_billable.is_(True),
            TimeEntry.approval_status == ApprovalStatus.APPROVED,
            not_invoiced(),
            listed,
        )
        .order_by(TimeEntry.work_date, TimeEntry.entry_id)
        .limit(PER_PAGE).offset((page - 1) * PER_PAGE)
    ).all()
    rows = []
    for r in result:
        p = priced.get(r.entry_id)
        rows.append(UnbilledRow(
            entry_id=r.entry_id, work_date=r.work_date, hours=r.hours_worked, description=r.description,
            ticket_id=r.ticket_id, ticket_number=r.ticket_number, ticket_title=r.title,
            project_number=r.project_number, project_name=r.project_name,
            included=p.included if p else ZERO, estimate=(p.amount if p else ZERO) if money else None,
        ))
    return rows
