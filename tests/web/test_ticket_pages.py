"""The staff queue and ticket pages: fragments and full pages, in-place actions, concurrent edits,
a fixed number of queries, opening tickets for customers, the customer page, auto-close."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from portal.models import SupportTicket, TicketComment
from tests import factories as f
from tests.conftest import count_queries


@pytest.fixture
def tech(browser, session):
    employee = f.make_staff(session, role="technician")
    browser.sign_in(employee.email)
    return employee


def _ticket(session, **kw):
    contract = kw.pop("contract", None)
    customer = kw.pop("customer", None) or f.make_customer(session)
    contract = contract or f.make_contract(session, customer=customer, start_date=datetime.now(UTC).date()
                                           - timedelta(days=30), end_date=datetime.now(UTC).date() + timedelta(days=300))
    values = dict(customer=customer, contract_id=contract.contract_id, created_at=datetime.now(UTC) - timedelta(hours=1))
    values.update(kw)
    return f.make_ticket(session, **values)


def test_queue_full_page_and_fragment(browser, htmx, session, tech):
    ticket = _ticket(session, title="Printer offline on floor 3")
    page = browser.get("/staff/tickets/")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and "Printer offline on floor 3" in body
    assert "HX-Request" in page.headers["Vary"]
    fragment = browser.client.get("/staff/tickets/?assignee=unassigned", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'id="queue-results"' in text and ticket.ticket_number in text


def test_search_finds_a_word_only_in_a_comment(browser, session, tech):
    match = _ticket(session, title="Laptop issue")
    other = _ticket(session, title="Another laptop issue")
    session.add(TicketComment(ticket_id=match.ticket_id, author_employee_id=tech.employee_id,
                              body="The docking station firmware was outdated."))
    session.flush()
    body = browser.get("/staff/tickets/?q=firmware").get_data(as_text=True)
    assert match.ticket_number in body and other.ticket_number not in body


def test_take_answers_with_the_updated_row(browser, session, tech):
    ticket = _ticket(session)
    browser.get("/staff/tickets/")
    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/take", {"version": ticket.version},
                            headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and body.lstrip().startswith("<tr") and tech.full_name in body
    assert "is yours" in response.headers["HX-Trigger"]


def test_concurrent_change_is_detected_and_shows_the_current_state(browser, other_browser, session):
    senior = f.make_staff(session, role="senior_technician")
    admin = f.make_staff(session, role="admin")
    ticket = _ticket(session, status="in_progress", assigned_employee_id=senior.employee_id)
    version = ticket.version
    browser.sign_in(senior.email)
    other_browser.sign_in(admin.email)
    browser.get(f"/staff/tickets/{ticket.ticket_id}")
    other_browser.get(f"/staff/tickets/{ticket.ticket_id}")
    first = other_browser.post(f"/staff/tickets/{ticket.ticket_id}/status",
                               {"status": "waiting_customer", "version": version, "message": "Is it fixed for you?"},
                               headers={"HX-Request": "true"})
    assert first.status_code == 200
    second = browser.post(f"/staff/tickets/{ticket.ticket_id}/status",
                          {"status": "resolved", "resolution_notes": "fixed", "version": version},
                          headers={"HX-Request": "true"})
    assert second.status_code == 409
    body = second.get_data(as_text=True)
    assert "Someone else changed this ticket" in body and "Waiting customer" in body
    session.expire_all()
    assert session.get(SupportTicket, ticket.ticket_id).status == "waiting_customer"


def test_resolving_without_notes_keeps_the_page_and_says_why(browser, session, tech):
    ticket = _ticket(session, status="in_progress", assigned_employee_id=tech.employee_id)
    browser.get(f"/staff/tickets/{ticket.ticket_id}")
    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/status",
                            {"status": "resolved", "resolution_notes": " ", "version": ticket.version},
                            headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "Enter the resolution notes." in response.get_data(as_text=True)


def test_plain_form_posts_redirect_back(browser, session, tech):
    ticket = _ticket(session, status="in_progress", assigned_employee_id=tech.employee_id)
    browser.get(f"/staff/tickets/{ticket.ticket_id}")
    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/comments", {"body": "On it.", "internal": "0"})
    assert response.status_code == 303 and response.headers["Location"] == f"/staff/tickets/{ticket.ticket_id}"


@pytest.mark.parametrize("url", ["/staff/tickets/", "/staff/tickets/?q=printer", "/staff/tickets/{ticket_id}",
                                 "/staff/customers/{customer_id}"])
def test_pages_run_a_fixed_number_of_queries(browser, session, tech, url):
    customer = f.make_customer(session)
    first = _ticket(session, customer=customer, title="printer jam")
    target = url.format(ticket_id=first.ticket_id, customer_id=customer.customer_id)

    def load():
        assert browser.client.get(target).status_code == 200

    load()  # warm up
    few = count_queries(session, load)
    for n in range(57):
        ticket = _ticket(session, customer=customer, title=f"printer {n}")
        session.add(TicketComment(ticket_id=first.ticket_id, author_employee_id=tech.employee_id, body=f"note {n}"))
        f.make_time_entry(session, employee=tech, ticket=first if n % 2 else ticket)
    session.flush()
    assert count_queries(session, load) == few


def test_open_a_ticket_for_a_customer(browser, session, tech):
    customer = f.make_customer(session, company_name="Zephyr Dental")
    contact = f.make_contact(session, customer=customer)
    page = browser.get("/staff/tickets/pickers/customers?customer_q=zephyr").get_data(as_text=True)
    assert "Zephyr Dental" in page
    page = browser.get(f"/staff/tickets/pickers/contacts?customer_id={customer.customer_id}").get_data(as_text=True)
    assert contact.email in page
    browser.get("/staff/tickets/new")
    response = browser.post("/staff/tickets/new", {"customer_id": customer.customer_id, "title": "Kept title",
                                                   "description": "", "category": "nonsense"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Kept title" in body and "Enter the description." in body and "Choose a category from the list." in body
    response = browser.post("/staff/tickets/new", {"customer_id": customer.customer_id, "contact_id": contact.contact_id,
                                                   "title": "Phone line down", "description": "Called in.",
                                                   "category": "network", "priority": "high"})
    assert response.status_code == 303
    ticket = session.scalar(sa.select(SupportTicket).where(SupportTicket.title == "Phone line down"))
    assert ticket.customer_id == customer.customer_id and ticket.contact_id == contact.contact_id


@pytest.mark.parametrize("role, sees_invoices", [("technician", False), ("account_manager", True), ("admin", True)])
def test_customer_page_by_role(browser, session, role, sees_invoices):
    employee = f.make_staff(session, role=role)
    customer = f.make_customer(session, company_name="Quartz Legal")
    f.make_invoice(session, customer=customer, invoice_number="INV-T-QUARTZ")
    browser.sign_in(employee.email)
    body = browser.get(f"/staff/customers/{customer.customer_id}").get_data(as_text=True)
    assert "Quartz Legal" in body
    assert ("INV-T-QUARTZ" in body) is sees_invoices
    assert browser.client.get("/staff/customers/999999999").status_code == 404


def test_close_resolved_command(app, session):
    old = _ticket(session, status="resolved", resolved_at=datetime.now(UTC) - timedelta(days=8),
                  created_at=datetime.now(UTC) - timedelta(days=9))
    recent = _ticket(session, status="resolved", resolved_at=datetime.now(UTC) - timedelta(days=6),
                     created_at=datetime.now(UTC) - timedelta(days=9))
    result = app.test_cli_runner().invoke(args=["close-resolved"])
    assert result.exit_code == 0 and "Closed 1 ticket" in result.output
    session.expire_all()
    assert session.get(SupportTicket, old.ticket_id).status == "closed"
    assert session.get(SupportTicket, recent.ticket_id).status == "resolved"


def test_waiting_without_a_message_is_refused_beside_its_field(browser, session, tech):
    ticket = _ticket(session, status="in_progress", assigned_employee_id=tech.employee_id)
    page = browser.get(f"/staff/tickets/{ticket.ticket_id}").get_data(as_text=True)
    assert 'for="wait-message">What do you need from the customer?' in page
    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/status",
                            {"status": "waiting_customer", "message": " ", "version": ticket.version},
                            headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'aria-describedby="wait-hint wait-error" aria-invalid="true"' in body
    assert '<p class="field__error" id="wait-error" role="alert">Write what you need from the customer' in body
    session.expire_all()
    stored = session.get(SupportTicket, ticket.ticket_id)
    assert stored.status == "in_progress" and stored.first_response_at is None

    response = browser.post(f"/staff/tickets/{ticket.ticket_id}/status",
                            {"status": "waiting_customer", "message": "Which printer is it?",
                             "version": stored.version}, headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Which printer is it?" in body and "No replies yet" not in body
    session.expire_all()
    assert session.get(SupportTicket, ticket.ticket_id).first_response_at is not None


def test_the_bulk_menu_offers_no_move_to_waiting(browser, session):
    senior = f.make_staff(session, role="senior_technician")
    _ticket(session)
    browser.sign_in(senior.email)
    body = browser.get("/staff/tickets/").get_data(as_text=True)
    bulk = body[body.index('id="bulk-value"'):body.index("</select>", body.index('id="bulk-value"'))]
    assert 'value="in_progress"' in bulk and 'value="waiting_customer"' not in bulk


def test_history_reads_as_people_say_it(browser, session):
    """The finding: "assigned employee id — → 2", "status in_progress → waiting_customer"."""
    senior = f.make_staff(session, role="senior_technician", first_name="John", last_name="Davis")
    ticket = _ticket(session, status="in_progress")
    browser.sign_in(senior.email)
    for path, data in ((f"/staff/tickets/{ticket.ticket_id}/assign", {"assigned_employee_id": senior.employee_id}),
                       (f"/staff/tickets/{ticket.ticket_id}/details", {"priority": "high", "estimated_hours": "3.5"}),
                       (f"/staff/tickets/{ticket.ticket_id}/status", {"status": "waiting_customer",
                                                                       "message": "Which printer?"})):
        browser.get(f"/staff/tickets/{ticket.ticket_id}")
        session.expire_all()
        data["version"] = session.get(SupportTicket, ticket.ticket_id).version
        assert browser.post(path, data).status_code == 303
    page = browser.get(f"/staff/tickets/{ticket.ticket_id}").get_data(as_text=True)
    history = page[page.index('id="history-title"'):]
    assert "Assigned to John Davis" in history
    assert "Priority: Medium → High; Estimate: none → 3.5 h" in history
    assert "In progress → Waiting for the customer" in history
    assert "employee id" not in history and "waiting_customer" not in history and "in_progress" not in history


def test_the_queue_customer_filter_lists_a_few_and_finds_the_rest(browser, session, tech):
    """The queue's customer filter does not list every customer (2,000 on a large install): the first 50
    by name, the chosen one always, a hint to type more; the search box refills the list."""
    from portal.services import choices

    made = [f.make_customer(session, company_name=f"Filter Co {n:03d}") for n in range(60)]
    f.make_customer(session, company_name="Odd 100%_Percent Ltd")
    _ticket(session, customer=made[55], title="Only Filter Co 055's ticket")
    page = browser.get(f"/staff/tickets/?customer_id={made[55].customer_id}").get_data(as_text=True)
    select = page[page.index('id="f-customer"'):]
    select = select[:select.index("</select>")]
    assert select.count("<option") == choices.CUSTOMER_LIMIT + 3  # Any, the chosen one, 50, the hint
    assert f'<option value="{made[55].customer_id}" selected>Filter Co 055</option>' in select
    assert "Type more of a name to see other customers" in select
    assert "Only Filter Co 055&#39;s ticket" in page or "Only Filter Co 055's ticket" in page

    found = browser.get(f"/staff/pickers/customer-filter?customer_q=co+05&customer_id={made[55].customer_id}")
    text = found.get_data(as_text=True)
    assert found.status_code == 200 and "<html" not in text
    assert text.count(f'value="{made[55].customer_id}" selected') == 1  # the chosen one once, kept chosen
    assert [n for n in range(60) if f">Filter Co {n:03d}<" in text] == list(range(50, 60))
    assert "Type more" not in text
    # A typed % or _ is a character, not a wildcard; no match says so.
    assert ">Odd 100%_Percent Ltd<" in browser.get("/staff/pickers/customer-filter?customer_q=0%25_").get_data(as_text=True)
    assert "Filter Co" not in browser.get("/staff/pickers/customer-filter?customer_q=%25").get_data(as_text=True)
    none = browser.get("/staff/pickers/customer-filter?customer_q=zzz").get_data(as_text=True)
    assert "No customer's name contains “zzz”" in none

