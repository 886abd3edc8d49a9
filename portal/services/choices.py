"""The choice lists of forms and filters (customers, contacts, people, work to log time on).

Pages ask these instead of querying: one query each, ordered for people to scan.
"""

from __future__ import annotations

import sqlalchemy as sa

from portal.models import Contact, Customer, Employee, EmploymentStatus, Project, SupportTicket, TicketStatus
from portal.services.statuses import PROJECT_MANAGER_ROLES, PROJECTS_OPEN, TICKET_WORKER_ROLES

CUSTOMER_LIMIT = 50
WORK_LIMIT = 30


def _full_name():
    return Employee.first_name + " " + Employee.last_name


def customers(session, q: str = "", *, limit: int | None = None) -> list[tuple[int, str]]:
    """(id, company name), alphabetical; with `q`, those whose name contains it."""
    query = sa.select(Customer.customer_id, Customer.company_name).order_by(Customer.company_name)
    if q.strip():
        query = query.where(Customer.company_name.ilike(f"%{q.strip()[:100]}%"))
    if limit:
        query = query.limit(limit)
    return [tuple(row) for row in session.execute(query)]


def customer_filter(session, q: str = "", *, selected: int | None = None,
                    limit: int = CUSTOMER_LIMIT) -> tuple[list[tuple[int, str]], bool]:
    """A filter's customer choices without listing every customer (2,000 on a large install), in one
    query: the `selected` customer first (whatever was typed), then the first `limit` by name whose name
    contains `q`; and whether more match than are shown (the page then says to type more)."""
    selected = selected if selected and 0 < selected < 2**31 else None
    chosen = Customer.customer_id == selected if selected else sa.false()
    query = sa.select(Customer.customer_id, Customer.company_name, chosen.label("chosen"))
    if q.strip():
        query = query.where(sa.or_(
            Customer.company_name.ilike(f"%{_like_escape(q.strip()[:100])}%", escape="\\"), chosen))
    rows = session.execute(query.order_by(sa.desc("chosen"), Customer.company_name).limit(limit + 2)).all()
    first = [(row[0], row[1]) for row in rows[:1] if row.chosen]
    others = [(row[0], row[1]) for row in rows if not row.chosen]
    return first + others[:limit], len(others) > limit


def _like_escape(text: str) -> str:
    """`text` matched literally by LIKE (a typed % or _ is not a wildcard)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contacts_of(session, customer_id: int | None) -> list[tuple[int, str, str]]:
    """(id, name, email) of a customer's contacts; none for no customer."""
    if not customer_id or not 0 < customer_id < 2**31:
        return []
    return [tuple(row) for row in session.execute(
        sa.select(Contact.contact_id, Contact.first_name + " " + Contact.last_name, Contact.email)
        .where(Contact.customer_id == customer_id).order_by(Contact.last_name))]


def ticket_workers(session) -> list[tuple[int, str]]:
    """(id, name) of the active employees who can be assigned tickets."""
    return [tuple(row) for row in session.execute(
        sa.select(Employee.employee_id, _full_name())
        .where(Employee.employment_status == EmploymentStatus.ACTIVE, Employee.role.in_(TICKET_WORKER_ROLES))
        .order_by(Employee.first_name))]


def project_managers(session) -> list[tuple[int, str]]:
    """(id, name) of the active employees who can manage a project."""
    return [tuple(row) for row in session.execute(
        sa.select(Employee.employee_id, _full_name())
        .where(Employee.employment_status == EmploymentStatus.ACTIVE, Employee.role.in_(PROJECT_MANAGER_ROLES))
        .order_by(Employee.first_name))]


def employees(session) -> list[tuple[int, str]]:
    """(id, name) of every employee (filters over past work include people who left)."""
    return [tuple(row) for row in session.execute(
        sa.select(Employee.employee_id, _full_name()).order_by(Employee.first_name))]


def work_to_log(session, q: str = "") -> tuple[list, list]:
    """Tickets not closed (latest activity first) and open projects to log time on; searchable."""
    tickets = sa.select(SupportTicket.ticket_id, SupportTicket.ticket_number, SupportTicket.title).where(
        SupportTicket.status != TicketStatus.CLOSED).order_by(SupportTicket.last_activity_at.desc()).limit(WORK_LIMIT)
    projects = sa.select(Project.project_id, Project.project_number, Project.project_name).where(
        Project.project_status.in_(PROJECTS_OPEN)).order_by(Project.project_number).limit(WORK_LIMIT)
    q = q.strip()[:100]
    if q:
        tickets = tickets.where(sa.or_(SupportTicket.ticket_number.ilike(f"%{q}%"), SupportTicket.title.ilike(f"%{q}%")))
        projects = projects.where(sa.or_(Project.project_number.ilike(f"%{q}%"), Project.project_name.ilike(f"%{q}%")))
    return session.execute(tickets).all(), session.execute(projects).all()
