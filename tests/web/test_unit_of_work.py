"""One commit per request, in one place; a database refusal the user caused is a message beside its field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import sqlalchemy as sa

from portal.models import TicketComment
from portal.services import tickets
from tests import factories as f

WEB = Path(__file__).resolve().parents[2] / "portal" / "web"


def test_no_view_commits_or_rolls_back():
    """Only the unit of work ends a request's transaction."""
    offenders = []
    for path in WEB.rglob("*.py"):
        if path.name == "unit_of_work.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if re.search(r"\b(commit|rollback)\(", line):
                offenders.append(f"{path.relative_to(WEB.parent.parent)}:{number}: {line.strip()}")
    assert offenders == []


def test_every_view_runs_in_the_unit_of_work(app):
    unwrapped = [endpoint for endpoint, view in app.view_functions.items()
                 if endpoint != "static" and not getattr(view, "unit_of_work", False)]
    assert unwrapped == []


def _write_an_empty_note(session, principal, ticket, body, *, internal=False, now=None):
    """A service with a bug: it writes what the database refuses (chk_comment_body)."""
    comment = TicketComment(ticket_id=ticket.ticket_id, body="   ", is_internal=internal,
                            author_employee_id=principal.employee_id)
    session.add(comment)
    session.flush()
    return comment


def test_a_check_tripped_in_a_real_request_is_a_422_with_the_fields_message(browser, htmx, session, monkeypatch):
    senior = f.make_staff(session, role="senior_technician")
    ticket = f.make_ticket(session, status="in_progress", assigned_employee_id=senior.employee_id)
    monkeypatch.setattr(tickets, "add_comment", _write_an_empty_note)
    browser.sign_in(senior.email)
    browser.get(f"/staff/tickets/{ticket.ticket_id}")
    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/comments", {"body": "Looks fine to me"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="comment-body-error" role="alert">Write a message first.' in page  # beside its field
    assert "Looks fine to me" in page  # what was typed is kept
    htmx.set_cookie("session", browser.client.get_cookie("session").value)
    response = htmx.post(f"/staff/tickets/{ticket.ticket_id}/comments", data={"body": "Again"},
                         headers={"X-CSRFToken": browser.token})
    assert response.status_code == 422 and 'id="ticket-main"' in response.get_data(as_text=True)
    assert json.loads(response.headers["HX-Trigger"])["showToast"]["message"] == "Write a message first."
    assert session.scalar(sa.select(sa.func.count()).select_from(TicketComment)
                          .where(TicketComment.ticket_id == ticket.ticket_id)) == 0  # nothing saved


def test_a_unique_key_tripped_in_a_real_request_is_a_409(browser, session, monkeypatch):
    """A service with a bug gives a ticket another's number: the unique key answers, as a conflict."""
    senior = f.make_staff(session, role="senior_technician")
    ticket, other = f.make_ticket(session), f.make_ticket(session)

    def renumber(db_session, principal, target, **kw):
        target.ticket_number = other.ticket_number
        db_session.flush()
        return target

    monkeypatch.setattr(tickets, "update_details", renumber)
    browser.sign_in(senior.email)
    browser.get(f"/staff/tickets/{ticket.ticket_id}")
    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/details",
                            {"priority": "high", "version": ticket.version})
    assert response.status_code == 409
    assert "A ticket with this number already exists." in response.get_data(as_text=True)


def test_a_refusal_by_privileges_is_a_bug_not_a_message(browser, session, monkeypatch):
    """A contact's transaction writing what its role may not (row-level security, column grants) is a
    500 that rolls back: no sentence hides a broken rule."""
    from portal.models import Account

    contact = f.make_contact_login(session)

    def touch_the_login_email(db_session, principal, change):
        account = db_session.scalar(sa.select(Account).where(Account.contact_id == principal.contact_id))
        account.email = "someone.else@example.com"
        db_session.flush()

    monkeypatch.setattr("portal.web.portal.account.update_contact_profile", touch_the_login_email)
    browser.sign_in(contact.email)
    browser.get("/portal/profile")
    response = browser.post("/portal/profile", {"first_name": "Dana", "last_name": "Lee", "phone": "",
                                               "mobile": "", "communication_preference": "email"})
    assert response.status_code == 500 and "Nothing you entered was saved" in response.get_data(as_text=True)
    session.expire_all()
    assert session.scalar(sa.select(Account.email).where(Account.contact_id == contact.contact_id)) == contact.email


def test_a_value_beyond_the_database_is_a_message_not_a_500(browser, session):
    tech = f.make_staff(session)
    ticket = f.make_ticket(session, status="in_progress", assigned_employee_id=tech.employee_id)
    browser.sign_in(tech.email)
    browser.get(f"/staff/tickets/{ticket.ticket_id}")
    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/time", {
        "work_date": "2026-11-30", "hours": "1", "work_category": "support", "description": "x" * 20,
        "start_time": "25:00"})
    assert response.status_code == 422 and "Enter the time as HH:MM." in response.get_data(as_text=True)
