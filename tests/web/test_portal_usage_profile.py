"""The portal's contract usage and profile pages: full page and htmx fragment, 422 with the message
beside the field, the read-only portal of a suspended customer, and a fixed number of queries."""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import AuditEvent, Contact
from portal.services import clock
from portal.services.reports.unbilled import refresh_unbilled
from tests import factories as f
from tests.conftest import count_queries

TODAY = date(2026, 6, 20)
HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch):
    monkeypatch.setattr(clock, "today", lambda at=None: TODAY)


@pytest.fixture
def world(session):
    customer = f.make_customer(session, company_name="Harbor Logistics")
    contract = f.make_contract(session, customer=customer, included_hours=10, hourly_rate_additional=D("150.00"),
                               monthly_fee=D("1200.00"), start_date=date(2026, 1, 1), end_date=date(2026, 12, 31))
    contact = f.make_contact_login(session, customer=customer, first_name="Nora", last_name="Quinn",
                                   phone="303 555 0100", is_primary_contact=True)
    tech = f.make_employee(session, hourly_rate_internal=D("61.37"), hourly_rate_client=D("100.00"))
    ticket = f.make_ticket(session, customer=customer, contract_id=contract.contract_id, title="VPN drops at noon")
    project = f.make_project(session, customer=customer, project_name="Warehouse Wi-Fi")

    def entry(day, hours, **kw):
        work = {"project": project} if kw.pop("on_project", False) else {"ticket": ticket}
        return f.make_time_entry(session, employee=tech, work_date=day, hours_worked=D(hours), **work,
                                 **{"approval_status": "approved", "billing_rate": D("100.00"), **kw})

    return {"customer": customer, "contract": contract, "contact": contact, "tech": tech, "ticket": ticket,
            "project": project, "entry": entry}


def text(response) -> str:
    return response.get_data(as_text=True)


def squash(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- contract usage -------------------------------------------------------------------------

def test_usage_page_shows_the_months_numbers_and_the_work_not_yet_invoiced(browser, session, world):
    world["entry"](date(2026, 6, 2), "8.00", description="Rebuilt the VPN tunnel")
    world["entry"](date(2026, 6, 3), "4.00", description="Moved the firewall rules")
    world["entry"](date(2026, 6, 4), "1.50", approval_status="pending", description="Still pending work")
    world["entry"](date(2026, 6, 5), "2.00", approval_status="rejected", rejection_reason="Logged twice, SECRET",
                   description="Rejected work")
    world["entry"](date(2026, 6, 6), "3.00", on_project=True, description="Surveyed the warehouse")
    other = f.make_customer(session)
    f.make_time_entry(session, ticket=f.make_ticket(session, customer=other), work_date=date(2026, 6, 3),
                      approval_status="approved", description="Another company's work")
    browser.sign_in(world["contact"].email)

    response = browser.get("/portal/usage")
    body = text(response)
    page = squash(body)
    assert response.status_code == 200 and "<html" in body and "HX-Request" in response.headers["Vary"]
    assert "Contract usage" in page and "June 2026, so far" in page
    assert "10 h a month" not in page and "10 support hours a month included for $1,200.00" in page
    assert "Used (approved) 12 h" in page and "Waiting for approval 1.5 h" in page
    assert "Over the plan 2 h billed at $150.00/h" in page
    assert "12 h of 10 h included used: 2 h over, billed at $150.00/h; 1.5 h waiting for approval, 0 h left." in page
    assert 'class="usage-bar' in body and "style=" not in body
    assert "Rebuilt the VPN tunnel" in page and "VPN drops at noon" in page and "Warehouse Wi-Fi" in page
    assert "Estimate: $600.00" in page  # 2 h x $150 + 3 project hours x $100
    for secret in ("61.37", "SECRET", "Rejected work", "Another company's work", "Still pending work"):
        assert secret not in body, secret
    assert 'href="/portal/usage"' in body and 'aria-current="page"' in body


def test_usage_fragment_for_htmx_and_other_months(browser, session, world):
    world["entry"](date(2026, 5, 12), "3.00", description="May work")
    browser.sign_in(world["contact"].email)
    response = browser.get("/portal/usage?month=2026-05", headers=HX)
    body = text(response)
    assert response.status_code == 200 and "<html" not in body and 'id="usage"' in body
    assert "May 2026" in body and "May work" in body and "This month" in body
    june = squash(text(browser.get("/portal/usage")))
    assert "Nothing waiting to be invoiced" in june and "May 2026 (3 h)" not in june  # not counted yet
    refresh_unbilled(session, clock.now())  # the worker's count, every five minutes
    june = squash(text(browser.get("/portal/usage")))
    assert "May 2026 (3 h)" in june and "recounted every five minutes" in june


@pytest.mark.parametrize("month, words", [("2026-13", "for example 2026-06"), ("abc", "for example"),
                                          ("2026-07", "no usage yet for July 2026"), ("1999-01", "January 2000"),
                                          ("9" * 300, "for example")])
def test_a_bad_month_is_a_422_with_the_message_beside_the_picker(browser, world, month, words):
    browser.sign_in(world["contact"].email)
    response = browser.get(f"/portal/usage?month={month}")
    body = text(response)
    assert response.status_code == 422 and words in body and "Showing June 2026" in body
    assert 'aria-invalid="true"' in body
    response = browser.get(f"/portal/usage?month={month}", headers=HX)
    assert response.status_code == 422 and "<html" not in text(response) and words in text(response)
    assert "HX-Trigger" not in response.headers  # the message is beside the picker, not in a toast


def test_a_customer_without_a_contract_is_told_so(browser, session):
    contact = f.make_contact_login(session, customer=f.make_customer(session, company_name="Solo Studio"),
                                   is_primary_contact=True)
    f.make_time_entry(session, ticket=f.make_ticket(session, customer=contact.customer), work_date=date(2026, 6, 2),
                      approval_status="approved", hours_worked=D("2.00"), billing_rate=D("95.00"),
                      description="Fixed the printer")
    browser.sign_in(contact.email)
    page = squash(text(browser.get("/portal/usage")))
    assert "No service contract" in page and "Solo Studio has no active service contract today" in page
    assert "Fixed the printer" in page and "Estimate: $190.00" in page


def test_bad_page_numbers_are_no_error(browser, world):
    world["entry"](date(2026, 6, 2), "1.00")
    browser.sign_in(world["contact"].email)
    for page in ("abc", "-1", "0", "99999999999999999999999"):
        assert browser.get(f"/portal/usage?page={page}").status_code == 200, page


def test_usage_page_runs_a_fixed_number_of_queries(browser, session, world):
    browser.sign_in(world["contact"].email)

    def queries(count):
        for n in range(count):
            world["entry"](date(2026, 6, 1 + n % 19), "0.25", on_project=bool(n % 2))
        session.flush()
        return count_queries(session, lambda: browser.get("/portal/usage"))

    few = queries(3)
    assert few == queries(57)  # 60 entries in all: two pages


# --- profile --------------------------------------------------------------------------------

PROFILE = {"first_name": "Nora", "last_name": "Quinn-Baker", "phone": "+1 303 555 0111", "mobile": "",
           "communication_preference": "email"}


def test_profile_page_shows_the_fields(browser, world):
    browser.sign_in(world["contact"].email)
    response = browser.get("/portal/profile")
    body = text(response)
    assert response.status_code == 200 and "<html" in body
    assert 'value="Nora"' in body and 'value="303 555 0100"' in body
    assert f'value="{world["contact"].email}" readonly' in body
    assert "Text message (SMS)" in body and "Phone call" in body
    assert 'href="/account/password"' in body and "Save profile" in body
    assert 'href="/portal/profile"' in body  # the user menu links here
    assert "hx-swap-oob" not in body and "style=" not in body


def test_saving_as_a_plain_form_redirects_and_the_header_shows_the_new_name(browser, session, world):
    browser.sign_in(world["contact"].email)
    browser.get("/portal/profile")
    response = browser.post("/portal/profile", PROFILE)
    assert response.status_code == 303 and response.headers["Location"].endswith("/portal/profile")
    page = text(browser.get("/portal/profile"))
    assert "Your profile is saved." in page and "<strong>Nora Quinn-Baker</strong>" in page
    contact = session.get(Contact, world["contact"].contact_id)
    session.refresh(contact)
    assert (contact.last_name, contact.phone) == ("Quinn-Baker", "+1 303 555 0111")
    event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "contact.profile_updated",
                                                       AuditEvent.row_id == contact.contact_id))
    assert event.changes["last_name"] == {"old": "Quinn", "new": "Quinn-Baker"}


def test_saving_with_htmx_answers_in_place_with_a_toast_and_the_new_name(browser, session, world):
    browser.sign_in(world["contact"].email)
    browser.get("/portal/profile")
    response = browser.post("/portal/profile", PROFILE, headers=HX)
    body = text(response)
    assert response.status_code == 200 and "<html" not in body and 'id="profile"' in body
    assert json.loads(response.headers["HX-Trigger"])["showToast"] == {"message": "Your profile is saved.",
                                                                     "level": "success"}
    assert 'hx-swap-oob="innerHTML:.topbar__user strong">Nora Quinn-Baker<' in body
    # Unchanged name: nothing to put into the header.
    response = browser.post("/portal/profile", PROFILE, headers=HX)
    assert response.status_code == 200 and "hx-swap-oob" not in text(response)


def test_bad_fields_are_a_422_with_messages_beside_them_and_what_was_typed(browser, session, world):
    browser.sign_in(world["contact"].email)
    browser.get("/portal/profile")
    bad = {**PROFILE, "first_name": "", "phone": "call me", "communication_preference": "sms"}
    for headers in ({}, HX):
        response = browser.post("/portal/profile", bad, headers=headers)
        body = text(response)
        assert response.status_code == 422
        assert "Enter your first name." in body and "in digits" in body and "mobile number" in body
        assert 'value="call me"' in body and 'value="Quinn-Baker"' in body
        assert 'aria-invalid="true"' in body and 'id="profile-first_name-error"' in body
    assert "<html" not in body and "HX-Trigger" not in response.headers
    session.expire_all()
    assert session.get(Contact, world["contact"].contact_id).last_name == "Quinn"


def test_a_suspended_customers_contact_sees_it_read_only(browser, session):
    customer = f.make_customer(session, account_status="suspended")
    contact = f.make_contact_login(session, customer=customer, first_name="Ivy")
    browser.sign_in(contact.email)
    body = text(browser.get("/portal/profile"))
    assert "Your profile is read-only while your company's account is suspended." in body
    assert "Save profile" not in body and "Change password" not in body
    assert re.search(r'<input(?=[^>]*\bdisabled\b)(?=[^>]*name="first_name")[^>]*>', body)
    response = browser.post("/portal/profile", {**PROFILE, "first_name": "Changed"})
    assert response.status_code == 403 and "read-only" in text(response)
    session.expire_all()
    assert session.get(Contact, contact.contact_id).first_name == "Ivy"
    assert browser.get("/portal/usage").status_code == 200


def test_the_password_page_keeps_the_portal_navigation_for_a_contact(browser, world):
    browser.sign_in(world["contact"].email)
    body = text(browser.get("/account/password"))
    assert 'href="/portal/usage"' in body and 'href="/portal/profile"' in body
    assert "topbar--portal" in body and 'class="breadcrumbs"><a href="/portal/profile">Your profile</a>' in body


@pytest.mark.parametrize("flags, money, sees", [
    ({}, False, {"Mine to fix"}),
    ({"is_billing_contact": True}, True, {"Mine to fix"}),
    ({"can_approve_projects": True}, False, {"Mine to fix", "Warehouse Wi-Fi"}),
    ({"is_primary_contact": True, "is_billing_contact": False}, True, {"Mine to fix", "VPN drops at noon",
                                                                     "Warehouse Wi-Fi"}),
], ids=["plain contact", "billing contact", "sponsor", "primary contact"])
def test_each_contact_sees_the_hours_and_what_its_flags_allow(browser, session, world, flags, money, sees):
    me = f.make_contact_login(session, customer=world["customer"], **flags)
    mine = f.make_ticket(session, customer=world["customer"], contract_id=world["contract"].contract_id,
                         contact_id=me.contact_id, title="Mine to fix")
    f.make_time_entry(session, employee=world["tech"], ticket=mine, work_date=date(2026, 6, 2),
                      hours_worked=D("8.00"), approval_status="approved", billing_rate=D("100.00"),
                      description="My own work")
    world["entry"](date(2026, 6, 3), "4.00", description="Work on the VPN ticket of Nora")
    world["entry"](date(2026, 6, 6), "3.00", on_project=True, description="Surveyed the warehouse")
    browser.sign_in(me.email)
    page = squash(text(browser.get("/portal/usage")))
    assert "Used (approved) 12 h" in page and "Over the plan 2 h" in page  # everyone: the hours
    for title in ("Mine to fix", "VPN drops at noon", "Warehouse Wi-Fi"):
        assert (title in page) == (title in sees), title
    for price in ("$1,200.00", "$150.00", "Estimate", "$600.00"):
        assert (price in page) == money, price
