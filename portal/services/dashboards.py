"""The counts on the two home pages, each a single query scoped by who asks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from portal.models import (
    ApprovalStatus,
    Invoice,
    InvoiceStatus,
    Project,
    ProjectPhase,
    SupportTicket,
    TicketStatus,
    TimeEntry,
)
from portal.services import policy
from portal.services.projects import awaiting_decision_clause
from portal.services.statuses import COUNT_CAP, TICKETS_UNRESOLVED, is_unresolved

OPEN_STATUSES = TICKETS_UNRESOLVED  # the home pages count work still to do


@dataclass(frozen=True)
class PortalSummary:
    open_tickets: int
    invoices_due: int | None  # None: this contact does not see invoices
    phases_awaiting: int | None  # None: this contact does not see projects
    recent_tickets: list = field(default_factory=list)  # open ones, what needs the contact first
    open_tickets_more: bool = False  # more than open_tickets (statuses.COUNT_CAP): "10,000+"


def portal_summary(session, principal: policy.Principal) -> PortalSummary:
    """Counts for a contact's home, filtered in SQL by the contact's customer (and own tickets)."""
    t = SupportTicket
    # is_unresolved: the same list as OPEN_STATUSES, written so idx_tickets_customer_open serves it.
    ticket_filter = [t.customer_id == principal.customer_id, is_unresolved(t.status)]
    if not policy.may_see_all_company_tickets(principal):
        ticket_filter.append(t.contact_id == principal.contact_id)
    # Counted up to COUNT_CAP + 1 ("10,000+"): a company's open work, never its whole history.
    open_tickets = sa.select(sa.func.count()).select_from(
        sa.select(t.ticket_id).where(*ticket_filter).limit(COUNT_CAP + 1).subquery()).scalar_subquery()
    invoices = sa.select(sa.func.count()).select_from(Invoice).where(
        Invoice.customer_id == principal.customer_id,
        Invoice.invoice_status.in_([InvoiceStatus.SENT, InvoiceStatus.OVERDUE])).scalar_subquery()
    phases = sa.select(sa.func.count()).select_from(ProjectPhase).join(Project).where(
        Project.customer_id == principal.customer_id, awaiting_decision_clause()).scalar_subquery()
    row = session.execute(sa.select(open_tickets, invoices, phases)).one()
    # The open ones, the one waiting for the customer and then the most urgent SLA first: the ten
    # chosen from the index alone (it includes status and sla_due_at), then only those rows read.
    order = [(t.status == TicketStatus.WAITING_CUSTOMER).desc(), t.sla_due_at.asc().nulls_last(),
             t.last_activity_at.desc(), t.ticket_id.desc()]
    chosen = sa.select(t.ticket_id).where(*ticket_filter).order_by(*order).limit(10).subquery()
    recent = session.scalars(sa.select(t).join(chosen, chosen.c.ticket_id == t.ticket_id).order_by(*order)).all()
    return PortalSummary(
        recent_tickets=list(recent),
        open_tickets=min(row[0], COUNT_CAP),
        open_tickets_more=row[0] > COUNT_CAP,
        invoices_due=row[1] if policy.may_see_invoices(principal) else None,
        phases_awaiting=row[2] if policy.may_decide_phase(principal) else None,
    )


@dataclass(frozen=True)
class StaffSummary:
    my_open_tickets: int
    unassigned_tickets: int
    my_pending_hours: object
    overdue_invoices: int | None


def staff_summary(session, principal: policy.Principal, today: date) -> StaffSummary:
    mine = sa.select(sa.func.count()).select_from(SupportTicket).where(
        SupportTicket.assigned_employee_id == principal.employee_id,
        SupportTicket.status.in_(OPEN_STATUSES)).scalar_subquery()
    unassigned = sa.select(sa.func.count()).select_from(SupportTicket).where(
        SupportTicket.assigned_employee_id.is_(None), SupportTicket.status.in_(OPEN_STATUSES)).scalar_subquery()
    pending = sa.select(sa.func.coalesce(sa.func.sum(TimeEntry.hours_worked), 0)).where(
        TimeEntry.employee_id == principal.employee_id,
        TimeEntry.approval_status == ApprovalStatus.PENDING).scalar_subquery()
    overdue = sa.select(sa.func.count()).select_from(Invoice).where(
        Invoice.invoice_status == InvoiceStatus.OVERDUE).scalar_subquery()
    row = session.execute(sa.select(mine, unassigned, pending, overdue)).one()
    return StaffSummary(row[0], row[1], row[2], row[3] if policy.may_bill(principal) else None)


@dataclass(frozen=True)
class ContractSummary:
    """A contract on the staff customer page; its fee is None for who may not see contract money."""

    contract_number: str
    contract_status: object
    start_date: date
    end_date: date
    response_time_hours: int
    resolution_time_hours: int
    monthly_fee: Decimal | None


@dataclass(frozen=True)
class CustomerOverview:
    customer: object
    contacts: list
    contracts: list[ContractSummary]
    open_tickets: list
    invoices: list | None  # None: this person does not see invoices
    contract_money: bool = False  # the contracts carry their fees (policy.may_see_contract_money)


def customer_overview(session, principal: policy.Principal, customer_id: int) -> CustomerOverview | None:
    """What staff see of one customer, in a fixed five queries; None if there is no such customer."""
    from portal.models import Contact, Customer, ServiceContract

    customer = session.get(Customer, customer_id)
    if customer is None or not policy.may_see_customer(principal, customer_id):
        return None
    contacts = session.scalars(sa.select(Contact).where(Contact.customer_id == customer_id)
                               .order_by(Contact.last_name)).all()
    contracts = session.scalars(sa.select(ServiceContract).where(ServiceContract.customer_id == customer_id)
                                .order_by(ServiceContract.start_date.desc())).all()
    tickets = session.scalars(sa.select(SupportTicket).where(
        SupportTicket.customer_id == customer_id, SupportTicket.status.in_(OPEN_STATUSES))
        .order_by(SupportTicket.sla_due_at.asc().nulls_last()).limit(50)).all()
    invoices = None
    if policy.may_see_invoices(principal):
        invoices = session.scalars(sa.select(Invoice).where(Invoice.customer_id == customer_id)
                                   .order_by(Invoice.invoice_date.desc()).limit(12)).all()
    money = policy.may_see_contract_money(principal)
    summaries = [ContractSummary(k.contract_number, k.contract_status, k.start_date, k.end_date, k.response_time_hours,
                                 k.resolution_time_hours, k.monthly_fee if money else None) for k in contracts]
    return CustomerOverview(customer, list(contacts), summaries, list(tickets), invoices, contract_money=money)
