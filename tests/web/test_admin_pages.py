"""The admin pages (/staff/admin): employees and the audit log, through the pages as people use them:
messages beside the fields, a deactivated employee's open session refused on its next request, the
hand-over, the last admin, a fixed number of read-only statements per audit page, history links
from the other pages, the CSV download."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from portal.models import ActorType, Employee, SupportTicket
from portal.services import audit, clock
from portal.services.actors import Actor
from tests import factories as f
from tests.conftest import count_queries


@pytest.fixture
def admin(browser, session):
    employee = f.make_staff(session, role="admin", first_name="Priya", last_name="Natarajan")
    browser.sign_in(employee.email)
    return employee


def _form(employee: Employee | None = None, **kw) -> dict:
    n = f._n()
    values = {"employee_number": f"W{n:05d}", "first_name": "Dana", "last_name": "Reyes",
              "email": f"dana{n}@techserv.com", "phone": "", "role": "technician", "department": "Service desk",
              "hire_date": clock.today().isoformat(), "hourly_rate_internal": "50", "hourly_rate_client": "$95.00",
              "capacity_hours_weekly": "40", "employment_status": "active", "termination_date": "",
              "skills_certifications": ""}
    if employee is not None:
        values.update({name: str(getattr(employee, name) or "") for name in values if hasattr(employee, name)})
        values["employment_status"] = str(employee.employment_status or "active")
        values["updated_at"] = employee.updated_at.isoformat()
    values.update(kw)
    return values


# --- employees -------------------------------------------------------------------------------

def test_hiring_through_the_page_and_the_messages_beside_the_fields(browser, session, admin):
    page = browser.get("/staff/admin/employees/new")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Unique. Up to 10 letters, digits and dashes" in body
    assert "Applies to time logged from now on" in body

    refused = browser.post("/staff/admin/employees/new", _form(email="dana@techserv", hourly_rate_client="0",
                                                              capacity_hours_weekly="lots"))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert 'id="email-error"' in text and "Enter a valid email address, like dana.reyes@techserv.com." in text
    assert "The client rate must be more than $0." in text
    assert "Enter the weekly capacity in hours, like 40 or 37.5." in text
    assert 'aria-describedby="email-hint email-error"' in text and 'value="dana@techserv"' in text

    done = browser.post("/staff/admin/employees/new", _form(employee_number="emp900", first_name="Sam"))
    assert done.status_code == 303
    sam = session.scalar(sa.select(Employee).where(Employee.employee_number == "EMP900"))
    assert done.headers["Location"].endswith(f"/staff/admin/employees/{sam.employee_id}")
    assert (sam.hourly_rate_client, sam.department) == (D("95.00"), "Service desk")
    shown = browser.get(done.headers["Location"]).get_data(as_text=True)
    assert "is on the team. Invite them next" in shown and "Invite Sam" in shown


def test_the_list_searches_and_filters_in_the_url(browser, session, admin):
    f.make_employee(session, first_name="Zelda", last_name="Quist", department="NOC", role="senior_technician")
    f.make_employee(session, first_name="Zeno", last_name="Quist", department="Sales", role="account_manager",
                    employment_status="terminated", termination_date=clock.today())
    body = browser.get("/staff/admin/employees?q=quist").get_data(as_text=True)
    assert "Zelda Quist" in body and "Zeno Quist" not in body  # active ones by default
    body = browser.get("/staff/admin/employees?q=quist&status=any&department=sales").get_data(as_text=True)
    assert "Zeno Quist" in body and "Zelda Quist" not in body
    fragment = browser.client.get("/staff/admin/employees?q=quist&role=senior_technician",
                                  headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'id="employee-results"' in text and "Zelda Quist" in text
    assert "HX-Request" in fragment.headers["Vary"]
    empty = browser.get("/staff/admin/employees?q=nobody-at-all").get_data(as_text=True)
    assert "No employees match" in empty


def test_the_list_costs_the_same_statements_for_three_or_thirty(browser, session, admin):
    load = lambda: browser.get("/staff/admin/employees?status=any")  # noqa: E731
    load()
    few = count_queries(session, load)
    for i in range(30):
        f.make_staff(session, department=f"Dept {i % 4}")
    assert count_queries(session, load) == few


def test_account_managers_read_rates_but_change_nothing(browser, session):
    manager = f.make_staff(session, role="account_manager")
    amanda = f.make_employee(session, hourly_rate_internal=D("55.00"), hourly_rate_client=D("100.00"))
    browser.sign_in(manager.email)
    body = browser.get(f"/staff/admin/employees/{amanda.employee_id}").get_data(as_text=True)
    assert "$55.00" in body and "$100.00" in body and "Save changes" not in body and "Add employee" not in body
    assert browser.post(f"/staff/admin/employees/{amanda.employee_id}", _form(amanda)).status_code == 403


def test_a_deactivated_employees_open_session_is_refused_on_its_next_request(app, browser, session, admin):
    amanda = f.make_staff(session, first_name="Amanda", last_name="Lee")
    theirs = type(browser)(app.test_client())
    theirs.sign_in(amanda.email)
    assert theirs.get("/staff/").status_code == 200

    saved = browser.post(f"/staff/admin/employees/{amanda.employee_id}", _form(amanda, employment_status="inactive"))
    assert saved.status_code == 303
    assert "signed out everywhere" in browser.get(saved.headers["Location"]).get_data(as_text=True)

    refused = theirs.get("/staff/")
    assert refused.status_code == 302 and "/login" in refused.headers["Location"]
    again = theirs.sign_in(amanda.email)
    assert again.status_code == 401 and "The email or password is wrong." in again.get_data(as_text=True)


def test_the_last_admin_is_told_beside_the_role(browser, session, admin):
    session.execute(sa.update(Employee).where(Employee.role == "admin", Employee.employee_id != admin.employee_id)
                    .values(role="account_manager"))
    page = browser.get(f"/staff/admin/employees/{admin.employee_id}").get_data(as_text=True)
    assert "is the only active administrator" in page
    refused = browser.post(f"/staff/admin/employees/{admin.employee_id}", _form(admin, role="technician"))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and 'id="role-error"' in text
    assert "Priya Natarajan is the only active administrator." in text
    assert session.get(Employee, admin.employee_id).role == "admin"


def test_a_stale_form_is_answered_with_the_employee_as_now(browser, session, admin):
    amanda = f.make_employee(session)
    form = _form(amanda, updated_at=(amanda.updated_at - timedelta(minutes=1)).isoformat(), department="Changed")
    refused = browser.post(f"/staff/admin/employees/{amanda.employee_id}", form)
    assert refused.status_code == 409 and "since you opened this page" in refused.get_data(as_text=True)


def test_hand_over_through_the_page(browser, session, admin):
    amanda = f.make_employee(session, first_name="Amanda", last_name="Lee", employment_status="inactive")
    john = f.make_staff(session, role="senior_technician", first_name="John", last_name="Davis")
    open_tickets = [f.make_ticket(session, assigned_employee_id=amanda.employee_id, status="in_progress",
                                  assigned_at=datetime(2026, 6, 1, 10, tzinfo=UTC)) for _ in range(3)]
    page = browser.get(f"/staff/admin/employees/{amanda.employee_id}").get_data(as_text=True)
    assert "3 open tickets" in page and "Hand over all" in page and "John Davis" in page
    refused = browser.post(f"/staff/admin/employees/{amanda.employee_id}/hand-over", {"tickets_to": ""})
    assert refused.status_code == 422 and "Choose who takes the tickets." in refused.get_data(as_text=True)
    done = browser.post(f"/staff/admin/employees/{amanda.employee_id}/hand-over", {"tickets_to": john.employee_id})
    assert done.status_code == 303
    assert "Handed over 3 open tickets." in browser.get(done.headers["Location"]).get_data(as_text=True)
    session.expire_all()
    assert {session.get(SupportTicket, t.ticket_id).assigned_employee_id for t in open_tickets} == {john.employee_id}


def test_inviting_from_the_employee_page(browser, session, admin, outbox):
    sam = f.make_employee(session, first_name="Sam")
    done = browser.post(f"/staff/admin/employees/{sam.employee_id}/invite")
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/staff/admin/employees/{sam.employee_id}")
    assert [mail.to for mail in outbox] == [[sam.email]] or [mail.to for mail in outbox] == [sam.email]
    assert "Invited" in browser.get(done.headers["Location"]).get_data(as_text=True)


# --- the audit log ---------------------------------------------------------------------------

def _spread(session, n: int) -> None:
    """`n` events of every kind of actor and object, mentioning people, tickets and projects."""
    people = [f.make_employee(session) for _ in range(3)]
    ticket, project, customer = f.make_ticket(session), f.make_project(session), f.make_customer(session)
    contact = f.make_contact(session)
    for i in range(n):
        who = [Actor(ActorType.EMPLOYEE, people[i % 3].employee_id, people[i % 3].full_name),
               Actor(ActorType.CONTACT, contact.contact_id, contact.full_name),
               Actor(ActorType.SYSTEM, None, "scheduler")][i % 3]
        table, row, changes = [("support_tickets", ticket.ticket_id, {"assigned_employee_id": (None, people[1].employee_id)}),
                               ("projects", project.project_id, {"project_manager_id": (people[0].employee_id, people[2].employee_id)}),
                               ("customers", customer.customer_id, None),
                               ("employees", people[2].employee_id, {"role": ("technician", "admin")})][i % 4]
        audit.record(session, who, "x.changed", table=table, row_id=row, changes=changes)


@pytest.mark.parametrize("url", ["/staff/admin/audit", "/staff/admin/audit?actor=system&table=projects",
                                 "/staff/admin/audit?object=TKT-2026-000001&date_from=2026-01-01&date_to=2026-12-31"])
def test_an_audit_page_costs_the_same_read_only_statements_whatever_it_shows(browser, session, admin, url):
    statements: list[str] = []
    engine = session.get_bind().engine

    def load():
        listener = lambda conn, cursor, statement, *a: statements.append(statement)  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            assert browser.get(url).status_code == 200
        finally:
            event.remove(engine, "before_cursor_execute", listener)

    load()
    few = count_queries(session, load)
    _spread(session, 300)
    statements.clear()
    assert count_queries(session, load) == few
    # The page only reads: no statement of the request writes anything.
    assert statements and [s for s in statements if s.lstrip().upper().startswith(
        ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "MERGE", "CREATE", "ALTER", "DROP", "WITH"))] == []


def test_the_audit_page_reads_as_people_say_it(browser, htmx, session, admin):
    amanda = f.make_employee(session, first_name="Amanda", last_name="Lee")
    ticket = f.make_ticket(session, title="Printer jams")
    audit.record(session, Actor(ActorType.EMPLOYEE, admin.employee_id, admin.full_name), "ticket.assigned",
                 table="support_tickets", row_id=ticket.ticket_id, changes={"assigned_employee_id": (None, amanda.employee_id)})
    body = browser.get(f"/staff/admin/audit?object={ticket.ticket_number}").get_data(as_text=True)
    assert f"History of ticket {ticket.ticket_number}" in body and "Printer jams" in body
    assert "Assigned to Amanda Lee" in body and "Ticket assigned" in body and "Priya Natarajan" in body
    fragment = browser.client.get(f"/staff/admin/audit?table=support_tickets&row_id={ticket.ticket_id}",
                                  headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'id="audit-results"' in text and "Assigned to Amanda Lee" in text
    refused = browser.get("/staff/admin/audit?object=12345")
    assert refused.status_code == 422 and "An id alone names nothing" in refused.get_data(as_text=True)


def test_the_csv_download(browser, session, admin):
    ticket = f.make_ticket(session, title="=cmd|' /C calc'!A0")
    audit.record(session, Actor(ActorType.SYSTEM, None, "=scheduler"), "ticket.updated", table="support_tickets",
                 row_id=ticket.ticket_id, changes={"priority": ("low", "high")})
    response = browser.get(f"/staff/admin/audit.csv?table=support_tickets&row_id={ticket.ticket_id}")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="audit-log-')
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 2 and rows[1][8] == "Priority: Low → High" and rows[1][1] == "TechServ Portal (=scheduler)"


def test_each_page_links_to_its_own_history_for_admins_only(app, browser, session, admin):
    customer = f.make_customer(session)
    ticket = f.make_ticket(session, customer=customer)
    project = f.make_project(session, customer=customer)
    invoice = f.make_invoice(session, customer=customer, invoice_status="sent")
    amanda = f.make_employee(session)
    pages = {f"/staff/customers/{customer.customer_id}": [f"table=customers&amp;row_id={customer.customer_id}",
                                                          f"table=invoices&amp;row_id={invoice.invoice_id}"],
             f"/staff/tickets/{ticket.ticket_id}": [f"table=support_tickets&amp;row_id={ticket.ticket_id}"],
             f"/staff/projects/{project.project_id}": [f"table=projects&amp;row_id={project.project_id}"],
             f"/staff/admin/employees/{amanda.employee_id}": [f"table=employees&amp;row_id={amanda.employee_id}"]}
    for url, links in pages.items():
        body = browser.get(url).get_data(as_text=True)
        for link in links:
            assert f"/staff/admin/audit?{link}" in body, (url, link)
    technician = type(browser)(app.test_client())
    technician.sign_in(f.make_staff(session, role="senior_technician").email)
    for url in list(pages)[:3]:
        assert "/staff/admin/audit" not in technician.get(url).get_data(as_text=True)
