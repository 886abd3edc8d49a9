"""The staff pages of mail in: the unmatched mail list (attach to a customer, discard) and the holiday
calendar (add, pre-fill a country's, remove), through the pages as people use them; a fixed number of
statements per page whatever the number of mails."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from portal.models import Contact, Holiday, InboundMail, SupportTicket
from portal.services import attachments, mail_in
from tests import factories as f
from tests.conftest import count_queries
from tests.services.test_mail_in import SETTINGS, mail


@pytest.fixture
def manager(browser, session):
    employee = f.make_staff(session, role="account_manager")
    browser.sign_in(employee.email)
    return employee


@pytest.fixture
def admin(browser, session):
    employee = f.make_staff(session, role="admin")
    browser.sign_in(employee.email)
    return employee


def _unmatched(app, session, sender="Bob Stone <bob@prospect.example>", subject="A quote?"):
    storage = attachments.Storage(app.config["ATTACHMENTS_PATH"])
    return mail_in.process(session, storage, mail(sender, subject, "Could you quote a firewall?"), SETTINGS)


def test_an_account_manager_attaches_a_mail_to_a_customer(app, browser, session, manager, outbox):
    customer = f.make_customer(session, company_name="Prospect Inc")
    record = _unmatched(app, session)
    page = browser.get("/staff/mail/unmatched")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "A quote?" in body and "bob@prospect.example" in body
    assert "Unmatched mail" in body and "Prospect Inc" in body  # the nav link and the customer choices

    refused = browser.post(f"/staff/mail/unmatched/{record.inbound_mail_id}/attach", {"customer_id": ""})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert f'id="m{record.inbound_mail_id}-customer_id-error"' in text and "Choose the customer this mail is from." in text

    done = browser.post(f"/staff/mail/unmatched/{record.inbound_mail_id}/attach",
                        {"customer_id": str(customer.customer_id), "first_name": "", "last_name": ""})
    assert done.status_code == 303
    session.refresh(record)
    assert record.outcome == "attached"
    contact = session.scalar(sa.select(Contact).where(Contact.email == "bob@prospect.example"))
    assert (contact.customer_id, contact.first_name, contact.last_name) == (customer.customer_id, "Bob", "Stone")
    ticket = session.get(SupportTicket, record.ticket_id)
    assert ticket.contact_id == contact.contact_id and ticket.title == "A quote?"
    assert [m.to for m in outbox if m.ticket_id == ticket.ticket_id] == ["bob@prospect.example"]
    after = browser.get("/staff/mail/unmatched").get_data(as_text=True)
    assert "A quote?" not in after and f"is now {ticket.ticket_number}, a ticket of its customer" in after


def test_a_mail_is_discarded_and_a_second_click_is_told_it_is_gone(app, browser, session, manager):
    record = _unmatched(app, session)
    assert browser.post(f"/staff/mail/unmatched/{record.inbound_mail_id}/discard").status_code == 303
    assert session.get(InboundMail, record.inbound_mail_id).outcome == "discarded"
    again = browser.post(f"/staff/mail/unmatched/{record.inbound_mail_id}/discard")
    assert again.status_code == 404


def test_the_unmatched_list_pages_in_a_fixed_number_of_statements(app, browser, session, manager):
    _unmatched(app, session)
    few = count_queries(session, lambda: browser.get("/staff/mail/unmatched"))
    for n in range(mail_in.PAGE_SIZE + 5):
        _unmatched(app, session, sender=f"someone{n}@prospect{n}.example", subject=f"Hello {n}")
    many = count_queries(session, lambda: browser.get("/staff/mail/unmatched"))
    assert few == many <= 12
    page = browser.get("/staff/mail/unmatched").get_data(as_text=True)
    assert page.count('class="card mail-item"') == mail_in.PAGE_SIZE and "Older" in page


def test_the_holiday_calendar(browser, session, admin):
    page = browser.get("/staff/admin/holidays?year=2031")
    assert page.status_code == 200 and "No holidays in 2031" in page.get_data(as_text=True)

    refused = browser.post("/staff/admin/holidays", {"day": "31/12/2031", "name": ""})
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="add-day-error"' in text and "Enter the holiday" in text

    assert browser.post("/staff/admin/holidays", {"day": "2031-12-24", "name": "Christmas Eve"}).status_code == 303
    twice = browser.post("/staff/admin/holidays", {"day": "2031-12-24", "name": "Again"})
    assert twice.status_code == 409 and "is a holiday already" in twice.get_data(as_text=True)

    filled = browser.post("/staff/admin/holidays/prefill", {"country": "US", "year": "2031"})
    assert filled.status_code == 303
    days = dict(session.execute(sa.select(Holiday.day, Holiday.name)
                                .where(Holiday.day.between(date(2031, 1, 1), date(2031, 12, 31)))).all())
    assert days[date(2031, 12, 24)] == "Christmas Eve" and days[date(2031, 12, 25)] == "Christmas Day"
    assert days[date(2031, 7, 4)] == "Independence Day"
    bad = browser.post("/staff/admin/holidays/prefill", {"country": "XX", "year": "2031"})
    assert bad.status_code == 422 and "Choose a country from the list." in bad.get_data(as_text=True)

    eve = session.scalar(sa.select(Holiday).where(Holiday.day == date(2031, 12, 24)))
    assert browser.post(f"/staff/admin/holidays/{eve.holiday_id}/delete").status_code == 303
    assert session.get(Holiday, eve.holiday_id) is None


def test_a_new_holiday_moves_an_open_tickets_deadline(browser, session, admin):
    customer = f.make_customer(session, timezone="America/Denver")
    contract = f.make_contract(session, customer, response_time_hours=4, resolution_time_hours=20,
                               start_date=date(2031, 1, 1), end_date=date(2031, 12, 31),
                               coverage_days=[1, 2, 3, 4, 5], coverage_start=time(8), coverage_end=time(18))
    from portal.services.sla import refresh_sla
    from zoneinfo import ZoneInfo

    denver = ZoneInfo("America/Denver")
    ticket = f.make_ticket(session, customer, contract_id=contract.contract_id,
                           created_at=datetime(2031, 6, 6, 17, 30, tzinfo=denver))  # a Friday
    refresh_sla(session, ticket)
    session.flush()
    assert ticket.response_due_at == datetime(2031, 6, 9, 11, 30, tzinfo=denver)
    assert browser.post("/staff/admin/holidays", {"day": "2031-06-09", "name": "Company day"}).status_code == 303
    session.refresh(ticket)
    assert ticket.response_due_at == datetime(2031, 6, 10, 11, 30, tzinfo=denver)
    assert ticket.response_due_at.astimezone(UTC) - datetime(2031, 6, 10, 17, 30, tzinfo=UTC) == timedelta()


def test_a_contact_reads_due_times_in_their_customers_zone_and_staff_in_the_msps(browser, session):
    customer = f.make_customer(session, timezone="Europe/Berlin")
    contract = f.make_contract(session, customer, response_time_hours=4, resolution_time_hours=24,
                               coverage_days=[1, 2, 3, 4, 5], coverage_start=time(8), coverage_end=time(18))
    contact = f.make_contact_login(session, customer=customer)
    from portal.services.sla import refresh_sla

    ticket = f.make_ticket(session, customer, contact_id=contact.contact_id, contract_id=contract.contract_id,
                           created_at=datetime(2026, 6, 5, 15, 30, tzinfo=UTC))  # Friday 17:30 in Berlin
    refresh_sla(session, ticket)
    session.flush()
    # 30 min on Friday, then 3.5 h from Monday 08:00 Berlin time.
    assert ticket.response_due_at == datetime(2026, 6, 8, 9, 30, tzinfo=UTC)
    browser.sign_in(contact.email)
    page = browser.get(f"/portal/tickets/{ticket.ticket_id}").get_data(as_text=True)
    assert "8 Jun 2026 11:30 CEST" in page
    staff = f.make_staff(session, role="admin")
    browser.get("/logout")
    browser.post("/logout")
    browser.sign_in(staff.email)
    staff_page = browser.get(f"/staff/tickets/{ticket.ticket_id}").get_data(as_text=True)
    assert "8 Jun 2026 03:30 MDT" in staff_page or "8 Jun 2026 3:30 MDT" in staff_page
    assert "Mon-Fri 08:00-18:00 Europe/Berlin, holidays excepted" in staff_page


def test_a_contact_mails_gets_a_number_answers_by_mail_and_sees_one_conversation(app, browser, session, outbox):
    """The issue's "done when", short of a mail client: the mails as they leave and come back."""
    from portal.services import tickets
    from tests.services.test_tickets import staff

    customer = f.make_customer(session)
    f.make_contract(session, customer)
    contact = f.make_contact_login(session, customer=customer, first_name="Jane", email="jane@dental.example")
    storage = attachments.Storage(app.config["ATTACHMENTS_PATH"])
    opened = mail_in.process(session, storage, mail("Jane <jane@dental.example>", "Email is slow",
                                                    "Outlook takes a minute to open each mail."), SETTINGS)
    ticket = session.get(SupportTicket, opened.ticket_id)
    [number] = [m for m in outbox if m.ticket_id == ticket.ticket_id]
    assert ticket.ticket_number in number.subject and ticket.ticket_number in number.body

    tech = staff(session, "senior_technician")
    tickets.change_status(session, tech[1], ticket, "in_progress", expected_version=ticket.version)
    tickets.add_comment(session, tech[1], ticket, "Does it happen in the web mail too?")
    [answer] = [m for m in outbox if "Does it happen" in m.body]
    reply = mail("Jane <jane@dental.example>", "Re: " + answer.subject,
                 "No, only in Outlook.\n\nJane\n\nOn Tue, Dec 1, 2026, TechServ wrote:\n> "
                 + answer.body.replace("\n", "\n> "),
                 headers={"In-Reply-To": answer.message_id, "References": " ".join(answer.references)})
    assert mail_in.process(session, storage, reply, SETTINGS).outcome == "replied"

    browser.sign_in(contact.email)
    page = browser.get(f"/portal/tickets/{ticket.ticket_id}").get_data(as_text=True)
    assert "Outlook takes a minute" in page and "Does it happen in the web mail too?" in page
    assert "No, only in Outlook." in page and "On Tue, Dec 1, 2026" not in page
