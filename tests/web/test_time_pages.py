"""Timesheet and approvals pages: in-place answers, messages beside the fields, fixed query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import TimeEntry
from tests import factories as f
from tests.conftest import count_queries


def _today():
    return datetime.now(UTC).date()


def test_log_time_in_place_and_see_it_in_the_grid(browser, session):
    tech = f.make_staff(session)
    ticket = f.make_ticket(session, title="VPN drops", created_at=datetime.now(UTC) - timedelta(days=3))
    browser.sign_in(tech.email)
    page = browser.get("/staff/timesheet").get_data(as_text=True)
    assert "No time this week yet" in page and ticket.ticket_number in page
    response = browser.post("/staff/timesheet/entries", {
        "work": f"ticket:{ticket.ticket_id}", "work_date": _today().isoformat(), "start_time": "09:00",
        "end_time": "10:30", "work_category": "support", "is_billable": "1", "description": "Fixed DPD timeout"},
        headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in body and 'id="timesheet"' in body
    assert "VPN drops" in body and "1.5" in body and "waiting for approval" in response.headers["HX-Trigger"]
    entry = session.scalar(sa.select(TimeEntry).where(TimeEntry.ticket_id == ticket.ticket_id))
    assert entry.customer_id == ticket.customer_id and entry.hours_worked == D("1.50")


@pytest.mark.parametrize("form, message", [
    ({"hours": "25"}, "Hours must be more than 0 and at most 24."),
    ({"hours": "0"}, "Hours must be more than 0 and at most 24."),
    ({"start_time": "10:00", "end_time": "09:00", "hours": ""}, "The end time must be after the start time."),
    ({"work": ""}, "Log time against one ticket or one project."),
    ({"description": " "}, "Say what you did."),
    ({"work_date": "yesterday"}, "Enter the date as YYYY-MM-DD."),
])
def test_bad_input_is_refused_with_the_reason_and_nothing_saved(browser, session, form, message):
    tech = f.make_staff(session)
    ticket = f.make_ticket(session)
    browser.sign_in(tech.email)
    browser.get("/staff/timesheet")
    data = {"work": f"ticket:{ticket.ticket_id}", "work_date": _today().isoformat(), "hours": "1",
            "work_category": "support", "description": "work", "is_billable": "1"}
    data.update(form)
    response = browser.post("/staff/timesheet/entries", data, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(TimeEntry)) == 0


def test_approvals_page_approve_and_reject(browser, session):
    senior = f.make_staff(session, role="senior_technician")
    author = f.make_staff(session)
    first = f.make_time_entry(session, employee=author, work_date=_today())
    second = f.make_time_entry(session, employee=author, work_date=_today())
    browser.sign_in(senior.email)
    page = browser.get("/staff/approvals").get_data(as_text=True)
    assert author.full_name in page
    response = browser.post("/staff/approvals", {"entry_ids": [str(second.entry_id)], "decision": "reject"},
                            headers={"HX-Request": "true"})
    assert response.status_code == 422 and "Say why the time is rejected" in response.get_data(as_text=True)
    browser.post("/staff/approvals", {"entry_ids": [str(first.entry_id)], "decision": "approve"},
                 headers={"HX-Request": "true"})
    browser.post("/staff/approvals", {"entry_ids": [str(second.entry_id)], "decision": "reject",
                                      "rejection_reason": "Split it over two days"}, headers={"HX-Request": "true"})
    session.expire_all()
    assert session.get(TimeEntry, first.entry_id).approval_status == "approved"
    assert session.get(TimeEntry, second.entry_id).rejection_reason == "Split it over two days"



def test_approvals_page_pages_and_counts_every_pending_entry(browser, session, monkeypatch):
    from portal.services import timesheets

    monkeypatch.setitem(timesheets.pending_approvals.__kwdefaults__, "per_page", 2)
    admin = f.make_staff(session, role="admin")
    author = f.make_staff(session)
    for _ in range(3):
        f.make_time_entry(session, employee=author, work_date=_today())
    browser.sign_in(admin.email)
    page = browser.get("/staff/approvals").get_data(as_text=True)
    assert "3 entries" in page and "Page 1 of 2" in page and page.count('name="entry_ids"') == 2
    second = browser.get("/staff/approvals?page=2", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Page 2 of 2" in second and second.count('name="entry_ids"') == 1 and "Previous" in second


@pytest.mark.parametrize("url, role", [("/staff/timesheet", "technician"), ("/staff/approvals", "admin")])
def test_time_pages_run_a_fixed_number_of_queries(browser, session, url, role):
    me = f.make_staff(session, role=role)
    author = f.make_staff(session) if role == "admin" else me
    ticket = f.make_ticket(session)
    for _ in range(3):
        f.make_time_entry(session, employee=author, ticket=ticket, work_date=_today())
    browser.sign_in(me.email)

    def load():
        assert browser.client.get(url).status_code == 200

    load()
    few = count_queries(session, load)
    for n in range(57):
        f.make_time_entry(session, employee=author, ticket=f.make_ticket(session) if n % 3 else ticket,
                          project=None, work_date=_today())
    session.flush()
    assert count_queries(session, load) == few


def test_a_rejection_without_a_reason_is_refused_beside_the_field_keeping_the_choice(browser, session):
    senior = f.make_staff(session, role="senior_technician")
    author = f.make_staff(session)
    chosen = f.make_time_entry(session, employee=author, work_date=_today())
    other = f.make_time_entry(session, employee=author, work_date=_today())
    browser.sign_in(senior.email)
    browser.get("/staff/approvals")
    response = browser.post("/staff/approvals", {"entry_ids": [str(chosen.entry_id)], "decision": "reject",
                                                 "rejection_reason": "  "}, headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'aria-invalid="true" aria-describedby="reject-reason-error" autofocus>' in body
    assert '<p class="field__error" id="reject-reason-error" role="alert">Say why the time is rejected' in body
    assert 'banner--error' not in body  # beside the field, not above the page
    assert f'value="{chosen.entry_id}" checked' in body and f'value="{other.entry_id}" checked' not in body


def test_deleting_an_entry_asks_first_in_the_page(browser, session):
    tech = f.make_staff(session)
    entry = f.make_time_entry(session, employee=tech, work_date=_today(), hours_worked=D("1.50"))
    browser.sign_in(tech.email)
    page = browser.get("/staff/timesheet").get_data(as_text=True)
    start = page.index('<details class="confirm">')
    confirm = page[start:page.index("</details>", start)]
    assert '<summary class="btn btn--small btn--secondary">Delete…</summary>' in confirm
    assert "Delete this entry of 1.5 h? It cannot be undone." in confirm
    assert f'action="/staff/timesheet/entries/{entry.entry_id}/delete' in confirm and ">Yes, delete</button>" in confirm
    assert "No, keep it</a>" in confirm and "hx-confirm" not in page
    # No delete button outside the question: one click never deletes.
    assert page.count(f"/staff/timesheet/entries/{entry.entry_id}/delete") == 2  # the form's action and hx-post
    assert page.index("/delete") > page.index('<details class="confirm">')
