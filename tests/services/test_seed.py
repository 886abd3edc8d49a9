"""`flask seed`: the seed document's rows exactly as written, then a believable, consistent history."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import (
    Account,
    Contact,
    Customer,
    Employee,
    Invoice,
    InvoiceLineItem,
    ProjectPhase,
    ServiceContract,
    SupportTicket,
    TicketComment,
    TimeEntry,
)
from portal.services.errors import Invalid
from portal.services.passwords import verify_password
from portal.services.seed import is_seeded, load_demo_data

PASSWORD = "correct horse battery"
TODAY = date(2026, 11, 25)


@pytest.fixture
def seeded(session):
    load_demo_data(session, password=PASSWORD, tax_rate=D("0"), today=TODAY)
    return session


def _all(session, model):
    return session.scalars(sa.select(model)).all()


def _snapshot(session) -> dict:
    tables = session.execute(sa.text(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1")).scalars().all()
    return {
        table: session.execute(sa.text(f'SELECT md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\'))'
                                       f' FROM "{table}" t')).scalar_one()
        for table in tables
    }


def test_seed_rows_exactly_as_written(seeded):
    customers = {c.company_name: c for c in _all(seeded, Customer)}
    dental = customers["Mountain View Dental"]
    assert (dental.industry, dental.company_size, dental.service_tier, dental.account_status,
            dental.primary_contact_email) == ("Healthcare", "small", "essential", "active", "office@mvdental.com")
    assert dental.account_health_score == D("0.75") and dental.timezone == "America/Denver"
    assert len(customers) == 5

    sarah = seeded.scalar(sa.select(Contact).where(Contact.email == "sarah.johnson@denvertech.com"))
    assert (sarah.first_name, sarah.last_name, sarah.title, sarah.is_primary_contact,
            sarah.can_approve_projects, sarah.customer.company_name) == (
        "Sarah", "Johnson", "IT Director", True, True, "Denver Tech Solutions")
    mike = seeded.scalar(sa.select(Contact).where(Contact.email == "mike.chen@denvertech.com"))
    assert (mike.is_primary_contact, mike.can_approve_projects, mike.can_create_tickets) == (False, False, True)

    employees = {e.employee_number: e for e in _all(seeded, Employee)}
    john = employees["EMP001"]
    assert (john.email, john.role, john.hourly_rate_internal, john.hourly_rate_client,
            john.skills_certifications) == ("john.davis@techserv.com", "senior_technician", D("75.00"),
                                            D("125.00"), "Microsoft 365, Azure, Security+")
    assert all(e.hire_date is not None for e in employees.values())  # errata 8
    assert employees["EMP005"].role == "admin"

    contract = seeded.scalar(sa.select(ServiceContract).where(ServiceContract.contract_number == "CON-2024-003"))
    assert (contract.customer.company_name, contract.service_tier, contract.monthly_fee, contract.included_hours,
            contract.start_date, contract.end_date) == (
        "Boulder Manufacturing Co", "enterprise", D("2500.00"), 50, date(2024, 1, 15), date(2025, 1, 14))


def test_2024_contracts_are_expired_predecessors_of_active_renewals(seeded):
    for customer in _all(seeded, Customer):
        contracts = sorted(customer.contracts, key=lambda c: c.start_date)
        assert contracts[0].contract_number.startswith("CON-2024-")
        assert all(c.contract_status == "expired" for c in contracts[:-1])
        active = contracts[-1]
        assert active.contract_status == "active" and active.start_date <= TODAY <= active.end_date
        for before, after in zip(contracts, contracts[1:]):
            assert after.start_date == before.end_date + timedelta(days=1)
            assert after.monthly_fee > before.monthly_fee  # the annual price increase
    expiring = seeded.scalar(sa.select(sa.func.count()).where(
        ServiceContract.contract_status == "active",
        ServiceContract.end_date.between(TODAY, TODAY + timedelta(days=90))))
    assert expiring >= 3


def test_billing_contacts_and_logins_for_everyone(seeded):
    for customer in _all(seeded, Customer):
        assert any(c.is_billing_contact for c in customer.contacts), customer.company_name
        assert any(c.is_primary_contact for c in customer.contacts), customer.company_name
    accounts = _all(seeded, Account)
    people = len(_all(seeded, Contact)) + len(_all(seeded, Employee))
    assert len(accounts) == people
    assert all(verify_password(a.password_hash, PASSWORD) for a in accounts[:3])
    assert not verify_password(accounts[0].password_hash, "wrong password")
    assert all(PASSWORD not in (a.password_hash or "") for a in accounts)


def test_history_covers_every_status(seeded):
    statuses = set(seeded.scalars(sa.select(SupportTicket.status).distinct()))
    assert statuses == {"open", "assigned", "in_progress", "waiting_customer", "resolved", "closed"}
    comments = _all(seeded, TicketComment)
    assert any(c.is_internal for c in comments) and any(not c.is_internal for c in comments)
    assert any(c.author_contact_id for c in comments)
    invoice_statuses = set(seeded.scalars(sa.select(Invoice.invoice_status).distinct()))
    assert {"draft", "sent", "paid", "overdue"} <= invoice_statuses
    entries = _all(seeded, TimeEntry)
    kinds = {(e.ticket_id is not None, e.approval_status) for e in entries}
    assert {(True, "approved"), (True, "pending"), (False, "approved"), (False, "pending")} <= kinds
    awaiting = seeded.scalars(sa.select(ProjectPhase).where(
        ProjectPhase.requires_approval.is_(True), ProjectPhase.approved_at.is_(None))).all()
    assert len(awaiting) == 1
    approved = seeded.scalars(sa.select(ProjectPhase).where(ProjectPhase.approved_at.is_not(None))).all()
    assert approved and all(p.approved_by_contact.can_approve_projects for p in approved)


def test_history_is_consistent(seeded):
    tickets = _all(seeded, SupportTicket)
    for ticket in tickets:
        approved = sum((e.hours_worked for e in _all_entries(seeded, ticket) if e.approval_status == "approved"),
                       D(0))
        assert ticket.actual_hours == approved
        assert ticket.ticket_number.startswith(f"TKT-{ticket.created_at.year}-")
        if ticket.contract_id:
            assert ticket.contract.customer_id == ticket.customer_id
            assert ticket.contract.covers(ticket.created_at.date())
        assert (ticket.status in ("resolved", "closed")) == (ticket.resolved_at is not None)
    numbers = [t.ticket_number for t in sorted(tickets, key=lambda t: t.created_at)]
    assert numbers == sorted(numbers)
    for entry in _all(seeded, TimeEntry):
        assert entry.customer_id == (entry.ticket or entry.project).customer_id
        assert entry.approved_by_employee_id != entry.employee_id
        assert (entry.approval_status == "approved") == (entry.approved_at is not None)
    for invoice in _all(seeded, Invoice):
        lines = sum((line.signed_total for line in invoice.line_items), D(0))
        assert invoice.subtotal == lines and invoice.total_amount == invoice.subtotal + invoice.tax_amount
        assert (invoice.invoice_status == "paid") == (invoice.paid_amount == invoice.total_amount)
        if invoice.invoice_status == "overdue":
            assert invoice.due_date < TODAY
    billed = seeded.scalars(sa.select(InvoiceLineItem.time_entry_id).where(
        InvoiceLineItem.time_entry_id.is_not(None))).all()
    assert len(billed) == len(set(billed))


def _all_entries(session, ticket):
    return session.scalars(sa.select(TimeEntry).where(TimeEntry.ticket_id == ticket.ticket_id)).all()


def test_running_twice_changes_nothing(seeded):
    before = _snapshot(seeded)
    result = load_demo_data(seeded, password="another password", tax_rate=D("0.1"), today=TODAY + timedelta(days=3))
    assert result.skipped and "nothing changed" in result.summary()
    assert _snapshot(seeded) == before
    assert is_seeded(seeded)


def test_short_password_is_refused_before_anything_is_written(session):
    with pytest.raises(Invalid, match="at least 8 characters"):
        load_demo_data(session, password="short", tax_rate=D("0"))
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)) == 0


def test_tax_rate_from_configuration_is_applied(session):
    load_demo_data(session, password=PASSWORD, tax_rate=D("0.0825"), today=TODAY)
    invoice = session.scalars(sa.select(Invoice).order_by(Invoice.invoice_id)).first()
    assert invoice.tax_rate == D("0.0825")
    assert invoice.tax_amount == (invoice.subtotal * D("0.0825")).quantize(D("0.01"))
