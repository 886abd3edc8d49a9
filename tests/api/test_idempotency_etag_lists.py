"""Idempotency-Key on POST, ETag / If-Match on PATCH, cursor pagination and updated_since."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from portal.models import Customer, SupportTicket
from portal.services import clock
from tests import factories as f

NEW = {"company_name": "Idempotent Industries", "service_tier": "essential"}


def test_the_same_key_and_body_answer_the_first_answer_and_change_nothing(api, session):
    first = api.post("/api/customers", json=NEW, headers={"Idempotency-Key": "k-1"})
    again = api.post("/api/customers", json=NEW, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)
                          .where(Customer.company_name == NEW["company_name"])) == 1


def test_the_same_key_with_another_body_is_422(api):
    assert api.post("/api/customers", json=NEW, headers={"Idempotency-Key": "k-2"}).status_code == 201
    other = api.post("/api/customers", json={**NEW, "company_name": "Other"}, headers={"Idempotency-Key": "k-2"})
    assert other.status_code == 422 and "Idempotency-Key" in other.get_json()["errors"]


def test_a_failed_request_keeps_no_key(api, session):
    bad = api.post("/api/customers", json={"company_name": ""}, headers={"Idempotency-Key": "k-3"})
    assert bad.status_code == 422
    assert api.post("/api/customers", json=NEW, headers={"Idempotency-Key": "k-3"}).status_code == 201


def test_keys_are_per_client(api_as):
    one, two = api_as("customers:write", "customers:read"), api_as("customers:write", "customers:read")
    assert one.post("/api/customers", json=NEW, headers={"Idempotency-Key": "shared"}).status_code == 201
    assert two.post("/api/customers", json=NEW, headers={"Idempotency-Key": "shared"}).status_code == 409


def test_a_stale_if_match_is_409_and_the_current_one_works(api, session):
    customer = f.make_customer(session)
    etag = api.get(f"/api/customers/{customer.customer_id}").headers["ETag"]
    assert api.patch(f"/api/customers/{customer.customer_id}", json={"industry": "Legal"},
                     headers={"If-Match": etag}).status_code == 200
    stale = api.patch(f"/api/customers/{customer.customer_id}", json={"industry": "Retail"}, headers={"If-Match": etag})
    assert stale.status_code == 409 and stale.mimetype == "application/problem+json"
    assert stale.headers["ETag"] != etag
    fresh = api.get(f"/api/customers/{customer.customer_id}").headers["ETag"]
    assert api.patch(f"/api/customers/{customer.customer_id}", json={"industry": "Retail"},
                     headers={"If-Match": fresh}).status_code == 200


def test_ticket_etag_follows_its_version(api, session):
    tech = f.make_staff(session, role="technician")
    ticket = f.make_ticket(session)
    etag = api.get(f"/api/tickets/{ticket.ticket_id}").headers["ETag"]
    changed = api.patch(f"/api/tickets/{ticket.ticket_id}", json={"assigned_employee_id": tech.employee_id},
                        headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert api.patch(f"/api/tickets/{ticket.ticket_id}", json={"priority": "high"},
                     headers={"If-Match": etag}).status_code == 409


def test_cursor_pages_walk_every_row_once(api, session):
    customer = f.make_customer(session)
    made = {f.make_ticket(session, customer=customer).ticket_id for _ in range(7)}
    seen, url = [], f"/api/tickets?customer_id={customer.customer_id}&limit=3"
    while url:
        response = api.get(url)
        assert response.status_code == 200
        body = response.get_json()
        seen += [row["ticket_id"] for row in body["data"]]
        url = body["links"]["next"]
        if url:
            assert response.headers["Link"] == f'<{url}>; rel="next"'
    assert sorted(seen) == sorted(made)


def test_updated_since_returns_only_what_changed(api, session):
    customer = f.make_customer(session)
    old, new = f.make_ticket(session, customer=customer), f.make_ticket(session, customer=customer)
    session.execute(sa.update(SupportTicket).where(SupportTicket.ticket_id == old.ticket_id)
                    .values(title="touched long ago"))
    session.execute(sa.text("ALTER TABLE support_tickets DISABLE TRIGGER trg_support_tickets_touch"))
    session.execute(sa.update(SupportTicket).where(SupportTicket.ticket_id == old.ticket_id)
                    .values(updated_at=clock.now() - timedelta(days=3)))
    session.execute(sa.text("ALTER TABLE support_tickets ENABLE TRIGGER trg_support_tickets_touch"))
    since = (clock.now() - timedelta(days=1)).isoformat()
    response = api.get("/api/tickets", query_string={"customer_id": customer.customer_id, "updated_since": since})
    assert [row["ticket_id"] for row in response.get_json()["data"]] == [new.ticket_id]


def test_an_update_by_a_trigger_moves_updated_at(session):
    ticket = f.make_ticket(session)
    before = session.scalar(sa.select(SupportTicket.updated_at).where(SupportTicket.ticket_id == ticket.ticket_id))
    session.execute(sa.text("SELECT pg_sleep(0.01)"))
    session.commit()
    session.execute(sa.update(SupportTicket).where(SupportTicket.ticket_id == ticket.ticket_id).values(title="t2"))
    after = session.scalar(sa.select(SupportTicket.updated_at).where(SupportTicket.ticket_id == ticket.ticket_id))
    assert after >= before


def test_a_bad_cursor_is_422(api):
    response = api.get("/api/tickets?cursor=not-a-cursor")
    assert response.status_code == 422 and "cursor" in response.get_json()["errors"]


def test_internal_notes_only_with_their_scope(api_as, session):
    from portal.models import TicketComment

    staff = f.make_staff(session, role="technician")
    ticket = f.make_ticket(session)
    session.add_all([TicketComment(ticket_id=ticket.ticket_id, body="public", author_employee_id=staff.employee_id),
                     TicketComment(ticket_id=ticket.ticket_id, body="secret note", is_internal=True,
                                   author_employee_id=staff.employee_id)])
    session.flush()
    public = api_as("tickets:read").get(f"/api/tickets/{ticket.ticket_id}").get_json()["comments"]
    everything = api_as("tickets:read", "tickets:internal").get(f"/api/tickets/{ticket.ticket_id}").get_json()["comments"]
    assert [c["body"] for c in public] == ["public"]
    assert [c["body"] for c in everything] == ["public", "secret note"]


def test_approvals_list_why_each_refused_entry_is_refused(api, session):
    approver = f.make_staff(session, role="senior_technician")
    own = f.make_time_entry(session, employee=approver)
    project_entry = f.make_time_entry(session, project=f.make_project(session))
    fine = f.make_time_entry(session)
    response = api.post("/api/time-entries/approve", json={
        "entry_ids": [own.entry_id, project_entry.entry_id, fine.entry_id],
        "approved_by_employee_id": approver.employee_id})
    assert response.status_code == 403
    errors = response.get_json()["errors"]
    assert set(errors) == {f"entry_ids.{own.entry_id}", f"entry_ids.{project_entry.entry_id}"}
    assert "may not decide" in errors[f"entry_ids.{own.entry_id}"]
    session.expire_all()
    assert fine.approval_status == "pending"  # all or nothing


def test_the_invoice_list_leaves_lines_out_unless_asked(api, session):
    customer = f.make_customer(session)
    invoice = f.make_invoice(session, customer=customer, invoice_status="sent")
    f.make_line(session, invoice)
    f.make_line(session, invoice)
    listed = api.get("/api/invoices", query_string={"customer_id": customer.customer_id}).get_json()["data"]
    assert [row["invoice_id"] for row in listed] == [invoice.invoice_id] and "lines" not in listed[0]
    embedded = api.get("/api/invoices", query_string={"customer_id": customer.customer_id, "include": "lines"})
    assert len(embedded.get_json()["data"][0]["lines"]) == 2
    assert len(api.get(f"/api/invoices/{invoice.invoice_id}").get_json()["lines"]) == 2
    refused = api.get("/api/invoices?include=payments")
    assert refused.status_code == 422 and "include" in refused.get_json()["errors"]
