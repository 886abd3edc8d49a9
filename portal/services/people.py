"""People and their logins, for the staff page that invites them."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from portal.models import Account, Contact, Customer, Employee
from portal.services import policy
from portal.services.errors import Forbidden

PER_PAGE = 25
MAX_PAGE = 10_000


@dataclass(frozen=True)
class PersonRow:
    person: Employee | Contact
    company: str | None
    login: str  # "active", "invited", "no_login" or "inactive"


@dataclass(frozen=True)
class PeoplePage:
    kind: str
    rows: list[PersonRow]
    page: int
    pages: int
    total: int


def _login_state(account: Account | None) -> str:
    if account is None:
        return "no_login"
    if not account.is_active:
        return "inactive"
    return "active" if account.password_hash else "invited"


def people_with_logins(session, principal: policy.Principal, kind: str, page: int) -> PeoplePage:
    """Employees (admins only) or customers' contacts, with the state of their login; two queries.

    :raises Forbidden: the principal may invite neither.
    """
    if not policy.may_manage_people(principal):
        raise Forbidden("Only account managers and admins manage logins.")
    if kind != "employees" or not policy.may_invite_employees(principal):
        kind = "contacts"
    if kind == "employees":
        query = (sa.select(Employee, Account, sa.null()).outerjoin(Account, Account.employee_id == Employee.employee_id)
                 .order_by(Employee.last_name, Employee.first_name, Employee.employee_id))
    else:
        query = (sa.select(Contact, Account, Customer.company_name)
                 .join(Customer, Customer.customer_id == Contact.customer_id)
                 .outerjoin(Account, Account.contact_id == Contact.contact_id)
                 .order_by(Customer.company_name, Contact.last_name, Contact.contact_id))
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    pages = max(1, -(-total // PER_PAGE))
    page = max(1, min(page, pages, MAX_PAGE))
    rows = session.execute(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return PeoplePage(kind, [PersonRow(person, company, _login_state(account)) for person, account, company in rows],
                      page, pages, total)
