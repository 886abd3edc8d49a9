"""The counts on the two home pages, each a single query scoped by who asks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import sqlalchemy as sa

from portal.models import (
    SUPPORT_WORK,
    ApprovalStatus,
    EmployeeRole,
    Invoice,
    InvoiceStatus,
    PendingTimeTotal,
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

    contract_id: int
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
    summaries = [ContractSummary(k.contract_id, k.contract_number, k.contract_status, k.start_date, k.end_date, k.response_time_hours,
                                 k.resolution_time_hours, k.monthly_fee if money else None) for k in contracts]
    return CustomerOverview(customer, list(contacts), summaries, list(tickets), invoices, contract_money=money)


# --- the staff home per role ---------------------------------------------------------------------

@dataclass(frozen=True)
class RoleHome:
    """What each role sees first on its home page; a part is None for a role that does not get it.

    Technicians: their queue and their tickets at risk. Seniors: the team's SLA and the support time
    waiting for approval. Project managers: their projects' burn and the phases awaiting customers.
    Account managers: MRR, renewals, overdue total, unbilled work. Admins: all of it.
    """

    my_queue: list | None = None  # (ticket, SLA state) of my unresolved tickets, the most urgent SLA first
    my_at_risk: int | None = None  # of those, at risk or breached now
    team_sla: tuple | None = None  # (met, missed, no response, percent met of answered) over 30 days
    team_at_risk: int | None = None  # unresolved tickets at risk or breached now
    awaiting_approval: tuple | None = None  # (entries, hours) of support time waiting for approval
    burn: list | None = None  # budget burn rows (reports.budget_burn) of my projects (admins: all)
    phases_awaiting: list | None = None  # (project number, project name, phase name, asked at)
    mrr: Decimal | None = None
    renewals: int | None = None  # contracts ending within 90 days
    overdue: tuple | None = None  # (invoices, outstanding)
    unbilled: object | None = None  # reports.unbilled.Unbilled
    sections: frozenset = frozenset()


HOME_SECTIONS = {
    EmployeeRole.TECHNICIAN: {"queue"},
    EmployeeRole.SENIOR_TECHNICIAN: {"queue", "team"},
    EmployeeRole.PROJECT_MANAGER: {"projects"},
    EmployeeRole.ACCOUNT_MANAGER: {"money"},
    EmployeeRole.ADMIN: {"queue", "team", "projects", "money"},
}


def role_home(session, principal: policy.Principal, today: date, now) -> RoleHome:
    """The role's home, in at most five statements whatever the data (figures in one, lists one each)."""
    from portal.models import ServiceContract
    from portal.services.reports import budget_burn, mrr, sla_compliance
    from portal.services.reports.common import late_invoice
    from portal.services.reports.unbilled import Unbilled, unbilled_summary_sql
    from portal.services.money import to_cents

    sections = frozenset(HOME_SECTIONS.get(principal.role, set()))
    figures = {}  # name -> a one-value SELECT
    groups = []  # one-row SELECTs of several named figures, each aggregated once (a FROM item, not a subquery each)
    open_ticket = SupportTicket.status.in_(OPEN_STATUSES)
    # Open and not waiting for the customer (its clock paused), in the words of idx_tickets_at_risk's predicate.
    being_worked = SupportTicket.status.in_([s for s in OPEN_STATUSES if s != TicketStatus.WAITING_CUSTOMER])
    if "queue" in sections:
        figures["my_at_risk"] = sa.select(sa.func.count()).select_from(SupportTicket).where(
            SupportTicket.assigned_employee_id == principal.employee_id, being_worked,
            SupportTicket.sla_at_risk_at <= now)
    if "team" in sections:
        figures["team_at_risk"] = sa.select(sa.func.count()).select_from(SupportTicket).where(
            being_worked, SupportTicket.sla_at_risk_at <= now)
        # Support time waiting for approval, everyone's: from the totals kept per author (migration 0025).
        groups.append(sa.select(sa.func.coalesce(sa.func.sum(PendingTimeTotal.entries), 0).label("pending_entries"),
                                sa.func.coalesce(sa.func.sum(PendingTimeTotal.hours), 0).label("pending_hours"))
                      .where(PendingTimeTotal.project_id == SUPPORT_WORK))
    if "money" in sections:
        figures["mrr"] = sa.select(sa.func.coalesce(sa.func.sum(ServiceContract.monthly_fee), 0)).where(
            mrr.contract_running(today))
        figures["renewals"] = sa.select(sa.func.count()).select_from(ServiceContract).where(
            ServiceContract.contract_status == "active",
            ServiceContract.end_date.between(today, today + timedelta(days=90)))
        groups.append(sa.select(sa.func.count().label("overdue_count"), sa.func.coalesce(sa.func.sum(
            sa.func.greatest(Invoice.total_amount - Invoice.paid_amount, 0)), 0).label("overdue_total"))
            .where(late_invoice(today)))
        unbilled = unbilled_summary_sql().subquery()
        groups.append(sa.select(*(column.label(name) for column, name in zip(
            unbilled.c, ("unbilled_hours", "unbilled_amount", "unbilled_entries", "unbilled_at")))))
    if "projects" in sections:
        mine = [] if policy.has_role(principal, EmployeeRole.ADMIN) else [
            Project.project_manager_id == principal.employee_id]
        figures["phases"] = sa.select(sa.func.count()).select_from(ProjectPhase).join(Project).where(
            awaiting_decision_clause(), *mine)
    values = {}
    if figures or groups:
        rows = [group.subquery(f"figures_{index}") for index, group in enumerate(groups)]
        statement = sa.select(*(query.scalar_subquery().label(name) for name, query in figures.items()),
                              *(column for row in rows for column in row.c))
        if rows:  # one row each: joined on nothing, a cross join of single rows
            joined = rows[0]
            for row in rows[1:]:
                joined = joined.join(row, sa.true())
            statement = statement.select_from(joined)
        values = dict(session.execute(statement).one()._mapping)

    home = {"sections": sections}
    if "queue" in sections:
        from portal.services.sla import sla_state

        home["my_queue"] = [(ticket, sla_state(ticket, now)) for ticket in session.scalars(
            sa.select(SupportTicket).where(SupportTicket.assigned_employee_id == principal.employee_id, open_ticket)
            .order_by(SupportTicket.sla_due_at.asc().nulls_last(), SupportTicket.ticket_id).limit(10))]
        home["my_at_risk"] = values["my_at_risk"]
    if "team" in sections:
        met, missed, none = sla_compliance.team_sla(session, today)
        from portal.services.reports.common import percent
        home["team_sla"] = (met, missed, none, percent(met, met + missed))
        home["team_at_risk"] = values["team_at_risk"]
        home["awaiting_approval"] = (values["pending_entries"], Decimal(values["pending_hours"]))
    if "projects" in sections:
        home["burn"] = budget_burn.burn_rows(session, principal, limit=10)
        mine = [] if policy.has_role(principal, EmployeeRole.ADMIN) else [
            Project.project_manager_id == principal.employee_id]
        home["phases_awaiting"] = session.execute(
            sa.select(Project.project_id, Project.project_number, Project.project_name, ProjectPhase.phase_name,
                      ProjectPhase.approval_requested_at).join(Project)
            .where(awaiting_decision_clause(), *mine)
            .order_by(ProjectPhase.approval_requested_at).limit(10)).all()
    if "money" in sections:
        home["mrr"] = to_cents(values["mrr"])
        home["renewals"] = values["renewals"]
        home["overdue"] = (values["overdue_count"], to_cents(values["overdue_total"]))
        home["unbilled"] = Unbilled(Decimal(values["unbilled_hours"]), to_cents(values["unbilled_amount"]),
                                    int(values["unbilled_entries"]), values["unbilled_at"])
    return RoleHome(**home)
