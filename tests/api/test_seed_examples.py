"""Every example of the seed's "REST API Specifications", posted exactly as written.

DESIGN erratum 8: the examples name ids (employee 1 and 5, ticket 12345, entries 101-104,
customer 1) and dates (June 2024) of the seed's world; the data here are demo-like rows made with
exactly those ids, and the clock is set to that June, so the bodies need no change at all.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.models import Contact, Customer, SupportTicket, TimeEntry
from portal.services import clock
from tests import factories as f
from tests.api.conftest import bump_sequences

SEED_NOW = datetime(2024, 6, 30, 18, 0, tzinfo=UTC)


@pytest.fixture
def seed_world(session, monkeypatch):
    monkeypatch.setattr(clock, "now", lambda: SEED_NOW)
    bump_sequences(session)
    john = f.make_employee(session, employee_id=1, first_name="John", last_name="Davis",
                           email="john.davis@techserv.example", role="senior_technician")
    amanda = f.make_employee(session, employee_id=2, first_name="Amanda", last_name="Lee",
                             email="amanda.lee@techserv.example", role="technician")
    priya = f.make_employee(session, employee_id=5, first_name="Priya", last_name="Natarajan",
                            email="priya.natarajan@techserv.example", role="admin")
    customer = f.make_customer(session, customer_id=1, company_name="Denver Tech Solutions",
                               primary_contact_email="admin@company.com")
    f.make_contract(session, customer=customer, start_date=date(2024, 1, 1), end_date=date(2024, 12, 31),
                    monthly_fee=Decimal("2500.00"), included_hours=10)
    ticket = f.make_ticket(session, customer=customer, ticket_id=12345, created_at=datetime(2024, 6, 20, tzinfo=UTC))
    for entry_id in (101, 102, 103, 104):
        f.make_time_entry(session, employee=john, ticket=ticket, entry_id=entry_id,
                          work_date=date(2024, 6, 10 + entry_id - 100), hours_worked=Decimal("1.50"))
    return {"john": john, "amanda": amanda, "priya": priya, "customer": customer, "ticket": ticket}


def test_create_customer_with_primary_contact(api, session, seed_world):
    response = api.post("/api/customers", json={
        "company_name": "New Tech Startup",
        "industry": "Technology",
        "service_tier": "professional",
        "primary_contact": {
            "first_name": "John",
            "last_name": "Doe",
            "email": "john@newtech.com",
            "title": "CTO"
        }
    })
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["company_name"] == "New Tech Startup" and body["service_tier"] == "professional"
    assert body["primary_contact_email"] == "john@newtech.com"
    [contact] = body["contacts"]
    assert contact["is_primary_contact"] and contact["title"] == "CTO"
    assert response.headers["Location"] == f"/api/customers/{body['customer_id']}"
    assert session.scalar(sa.select(Contact).where(Contact.email == "john@newtech.com")).customer_id == body["customer_id"]


def test_get_customer_with_contracts_and_contacts(api, seed_world):
    response = api.get("/api/customers/1?include=contracts,contacts")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["customer_id"] == 1 and len(body["contracts"]) == 1 and body["contacts"] == []
    assert body["contracts"][0]["monthly_fee"] == "2500.00"
    assert response.headers["ETag"]


def test_update_customer_service_tier(api, session, seed_world):
    seed_world["customer"].account_status = "prospect"
    session.flush()
    response = api.patch("/api/customers/1", json={
        "service_tier": "enterprise",
        "account_status": "active"
    })
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["service_tier"] == "enterprise"
    assert session.get(Customer, 1).account_status == "active"


def test_create_ticket_from_email_automation(api, session, seed_world):
    response = api.post("/api/tickets", json={
        "customer_email": "admin@company.com",
        "title": "Email server down",
        "description": "Users cannot send/receive emails",
        "category": "email",
        "priority": "critical"
    })
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["customer_id"] == 1 and body["priority"] == "critical" and body["status"] == "open"
    assert body["ticket_number"].startswith("TKT-2024-")
    assert body["contract_id"] is not None  # the customer's active contract on the day


def test_update_ticket_status(api, session, seed_world):
    response = api.patch("/api/tickets/12345", json={
        "status": "in_progress",
        "assigned_employee_id": 2,
        "estimated_hours": 3.0
    })
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["status"], body["assigned_employee_id"], body["estimated_hours"]) == ("in_progress", 2, "3.00")
    ticket = session.get(SupportTicket, 12345)
    assert ticket.status == "in_progress"


def test_tickets_requiring_sla_attention(api, seed_world):
    response = api.get("/api/tickets/sla-alerts?days=1")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["days"] == 1


def test_submit_time_entry(api, session, seed_world):
    response = api.post("/api/time-entries", json={
        "employee_id": 1,
        "ticket_id": 12345,
        "work_date": "2024-06-22",
        "hours_worked": 2.5,
        "description": "Configured new email security policies",
        "work_category": "support"
    })
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["employee_id"], Decimal(body["hours_worked"]), body["approval_status"]) == (1, Decimal("2.5"), "pending")
    assert body["billing_rate"] == "100.00"  # the employee's client rate


def test_approve_time_entries(api, session, seed_world):
    response = api.post("/api/time-entries/approve", json={
        "entry_ids": [101, 102, 103, 104],
        "approved_by_employee_id": 5
    })
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["approved"] == 4
    session.expire_all()
    entries = session.scalars(sa.select(TimeEntry).where(TimeEntry.entry_id.in_([101, 102, 103, 104]))).all()
    assert {(e.approval_status, e.approved_by_employee_id) for e in entries} == {("approved", 5)}


def test_generate_invoice(api, session, seed_world):
    session.execute(sa.update(TimeEntry).where(TimeEntry.entry_id.in_([101, 102, 103, 104]))
                    .values(approval_status="approved", approved_by_employee_id=5, approved_at=SEED_NOW))
    response = api.post("/api/invoices/generate", json={
        "customer_id": 1,
        "billing_period_start": "2024-06-01",
        "billing_period_end": "2024-06-30",
        "include_monthly_fees": True
    })
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["customer_id"] == 1 and body["invoice_status"] == "draft"
    # The monthly fee, then 6 h of support inside the 10 included hours (at 0.00).
    assert body["subtotal"] == "2500.00" and len(body["lines"]) == 5
