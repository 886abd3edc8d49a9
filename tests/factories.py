"""Factories for the rows tests need: valid by default, any column overridable."""

from __future__ import annotations

import io

import itertools
from datetime import UTC, date, datetime
from decimal import Decimal

from werkzeug.security import generate_password_hash

from portal.models import (
    Account,
    Contact,
    Customer,
    Employee,
    Invoice,
    InvoiceLineItem,
    Project,
    ServiceContract,
    SupportTicket,
    TimeEntry,
)

_seq = itertools.count(1)

PASSWORD = "correct horse battery"
# Hashed once, cheaply: tests sign in hundreds of times; production uses scrypt (services/passwords.py).
_FAST_HASH = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")


def _n() -> int:
    return next(_seq)


def _save(session, obj):
    session.add(obj)
    session.flush()
    return obj


def make_customer(session, **kw) -> Customer:
    n = _n()
    values = dict(company_name=f"Test Customer {n}", primary_contact_email=f"it{n}@customer{n}.example",
                  account_status="active", service_tier="professional")
    values.update(kw)
    return _save(session, Customer(**values))


def make_contact(session, customer=None, **kw) -> Contact:
    n = _n()
    customer = customer or make_customer(session)
    values = dict(customer_id=customer.customer_id, first_name="Test", last_name=f"Contact{n}",
                  email=f"contact{n}@example.com")
    values.update(kw)
    return _save(session, Contact(**values))


def make_employee(session, **kw) -> Employee:
    n = _n()
    values = dict(employee_number=f"T{n:05d}", first_name="Test", last_name=f"Employee{n}",
                  email=f"employee{n}@techserv.example", role="technician", hire_date=date(2020, 1, 1),
                  hourly_rate_internal=Decimal("50.00"), hourly_rate_client=Decimal("100.00"))
    values.update(kw)
    return _save(session, Employee(**values))


def make_contract(session, customer=None, **kw) -> ServiceContract:
    n = _n()
    customer = customer or make_customer(session)
    values = dict(contract_number=f"CON-T-{n:06d}", customer_id=customer.customer_id,
                  service_tier="professional", monthly_fee=Decimal("1000.00"), included_hours=10,
                  start_date=date(2026, 1, 1), end_date=date(2026, 12, 31), contract_status="active")
    values.update(kw)
    return _save(session, ServiceContract(**values))


def make_ticket(session, customer=None, **kw) -> SupportTicket:
    n = _n()
    customer = customer or make_customer(session)
    values = dict(ticket_number=f"TKT-T-{n:07d}", customer_id=customer.customer_id, title=f"Ticket {n}",
                  description="Something is broken.", category="software",
                  created_at=datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    values.update(kw)
    return _save(session, SupportTicket(**values))


def make_project(session, customer=None, **kw) -> Project:
    n = _n()
    customer = customer or make_customer(session)
    values = dict(project_number=f"PRJ-T-{n:06d}", customer_id=customer.customer_id,
                  project_name=f"Project {n}", budget_amount=Decimal("10000.00"),
                  start_date=date(2026, 1, 1), planned_end_date=date(2026, 6, 30))
    values.update(kw)
    return _save(session, Project(**values))


def make_time_entry(session, employee=None, ticket=None, project=None, **kw) -> TimeEntry:
    employee = employee or make_employee(session)
    if ticket is None and project is None and "ticket_id" not in kw and "project_id" not in kw:
        ticket = make_ticket(session)
    work = ticket or project
    values = dict(employee_id=employee.employee_id,
                  customer_id=work.customer_id if work is not None else kw.get("customer_id"),
                  ticket_id=ticket.ticket_id if ticket else None,
                  project_id=project.project_id if project else None,
                  work_date=date(2026, 6, 2), hours_worked=Decimal("1.50"), description="Work done.",
                  work_category="support", billing_rate=Decimal("100.00"))
    values.update(kw)
    return _save(session, TimeEntry(**values))


def make_invoice(session, customer=None, **kw) -> Invoice:
    n = _n()
    customer = customer or make_customer(session)
    values = dict(invoice_number=f"INV-T-{n:07d}", customer_id=customer.customer_id,
                  invoice_date=date(2026, 7, 1), due_date=date(2026, 7, 31))
    values.update(kw)
    invoice = _save(session, Invoice(**values))
    session.refresh(invoice)
    return invoice


def make_line(session, invoice, **kw) -> InvoiceLineItem:
    values = dict(invoice_id=invoice.invoice_id, description="Line", quantity=Decimal("1"),
                  unit_price=Decimal("100.00"), line_total=Decimal("100.00"), item_type="expense")
    values.update(kw)
    return _save(session, InvoiceLineItem(**values))


def make_account(session, person, **kw) -> Account:
    """A login for a contact or an employee, with password PASSWORD."""
    owner = {"employee_id": person.employee_id} if isinstance(person, Employee) else {"contact_id": person.contact_id}
    values = dict(email=person.email, password_hash=_FAST_HASH, **owner)
    values.update(kw)
    return _save(session, Account(**values))


def make_staff(session, role="technician", **kw) -> Employee:
    """An employee with a login."""
    employee = make_employee(session, role=role, **kw)
    make_account(session, employee)
    return employee


def make_contact_login(session, customer=None, **kw) -> Contact:
    """A contact with a login; flags as keyword arguments (is_primary_contact=True, ...)."""
    contact = make_contact(session, customer=customer, **kw)
    make_account(session, contact)
    return contact


def make_attachment(session, ticket, *, data: bytes = b"line one\nline two\n", file_name: str = "error.log",
                    comment=None, contact=None, employee=None):
    """An attachment stored under the test app's attachments folder (tests.conftest.ATTACHMENTS)."""
    from portal.services import attachments
    from portal.services.policy import Principal
    from tests.conftest import ATTACHMENTS

    if contact is None and employee is None:
        employee = make_employee(session)
    principal = Principal(account_id=0, email="", name="", contact_id=contact.contact_id if contact else None,
                          employee_id=employee.employee_id if employee else None)
    checked = attachments.check(attachments.Upload(file_name, io.BytesIO(data)))
    return attachments.attach(session, attachments.Storage(ATTACHMENTS["root"]), principal, ticket, [checked],
                              comment=comment)[0]
