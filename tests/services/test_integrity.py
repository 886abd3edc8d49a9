"""Database errors a user can cause become one clear sentence naming the field."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import Contact, Customer, TimeEntry
from portal.services.errors import Conflict, Invalid
from portal.services.integrity import CONSTRAINT_MESSAGES, integrity_as_domain_errors
from tests import factories as f


def test_check_violation_names_the_field(session):
    ticket = f.make_ticket(session)
    employee = f.make_employee(session)
    with pytest.raises(Invalid) as caught:
        with integrity_as_domain_errors(session):
            session.add(TimeEntry(employee_id=employee.employee_id, customer_id=ticket.customer_id,
                                  ticket_id=ticket.ticket_id, work_date=ticket.created_at.date(),
                                  hours_worked=D("25"), description="x", work_category="support",
                                  billing_rate=D("100")))
    assert caught.value.field == "hours_worked"
    assert caught.value.message == "Hours worked must be more than 0 and at most 24."
    assert caught.value.errors == {"hours_worked": caught.value.message}


def test_unique_violation_is_a_conflict_and_the_transaction_goes_on(session):
    existing = f.make_contact(session)
    with pytest.raises(Conflict) as caught:
        with integrity_as_domain_errors(session):
            session.add(Contact(customer_id=existing.customer_id, first_name="A", last_name="B",
                                email=existing.email))
    assert caught.value.field == "email"
    assert "already uses this email" in caught.value.message
    # The savepoint kept the test's transaction usable.
    assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) >= 1


def test_same_constraint_name_on_two_tables_gets_the_right_field(session):
    with pytest.raises(Invalid) as caught:
        with integrity_as_domain_errors(session):
            session.add(Customer(company_name="Bad Mail Co", primary_contact_email="nope"))
    assert caught.value.field == "primary_contact_email"


def test_row_still_in_use_cannot_be_removed(session):
    ticket = f.make_ticket(session)
    with pytest.raises(Conflict, match="still in use"):
        with integrity_as_domain_errors(session):
            session.delete(ticket.customer)


def test_unknown_not_null_still_gets_a_sentence(session):
    with pytest.raises(Invalid) as caught:
        with integrity_as_domain_errors(session):
            session.execute(sa.text("INSERT INTO customers (company_name) VALUES (NULL)"))
    assert caught.value.field == "company_name"
    assert caught.value.message == "Company name: this field is required."


def test_programming_errors_are_not_hidden(session):
    with pytest.raises(sa.exc.ProgrammingError):
        with integrity_as_domain_errors(session):
            session.execute(sa.text("SELECT no_such_column FROM customers"))


def test_every_named_constraint_in_the_database_has_a_message(session):
    """Each CHECK and unique key a user can trip is translated; a new one without a message fails here."""
    rows = session.execute(sa.text("""
        SELECT rel.relname, con.conname FROM pg_constraint con
        JOIN pg_class rel ON rel.oid = con.conrelid
        JOIN pg_namespace ns ON ns.oid = rel.relnamespace
        WHERE ns.nspname = current_schema() AND con.contype IN ('c', 'u')
          AND rel.relname NOT LIKE 'procrastinate\\_%'  -- the job queue's own, never a user's
        UNION
        SELECT t.relname, i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace ns ON ns.oid = t.relnamespace
        WHERE ns.nspname = current_schema() AND x.indisunique AND NOT x.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
          AND t.relname <> 'alembic_version' AND t.relname NOT LIKE 'procrastinate\\_%'
    """)).all()
    assert {tuple(row) for row in rows} - set(CONSTRAINT_MESSAGES) == set()
