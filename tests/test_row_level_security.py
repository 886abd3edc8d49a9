"""Row-level security: a contact's transaction sees and changes only its own customer's rows,
even when a query forgets its filter. The second line of defence, tested on its own."""

from __future__ import annotations

from contextlib import contextmanager
import pytest
import sqlalchemy as sa

from portal.models import Contact, Customer
from portal.services.tenancy import apply_contact_scope, clear_contact_scope
from tests import factories as f

TENANT_TABLES = ["customers", "contacts", "service_contracts", "support_tickets", "ticket_comments", "projects",
                 "project_phases", "time_entries", "invoices", "invoice_line_items", "accounts", "ticket_attachments"]


@pytest.fixture
def two_customers(session):
    """Customers A and B, each with a row in every table that holds a customer's data."""
    ids = {}
    for name in ("a", "b"):
        customer = f.make_customer(session)
        contact = f.make_contact_login(session, customer=customer)
        contract = f.make_contract(session, customer=customer)
        ticket = f.make_ticket(session, customer=customer, contract_id=contract.contract_id,
                               contact_id=contact.contact_id)
        employee = f.make_employee(session)
        session.execute(sa.text("""INSERT INTO ticket_comments (ticket_id, author_employee_id, body, is_internal)
                                   VALUES (:t, :e, 'public reply', false), (:t, :e, 'internal note', true)"""),
                        {"t": ticket.ticket_id, "e": employee.employee_id})
        session.execute(sa.text("""INSERT INTO ticket_attachments (ticket_id, uploaded_by_employee_id, file_name,
                                   content_type, size_bytes, sha256, storage_name)
                                   VALUES (:t, :e, 'log.txt', 'text/plain', 3, repeat('0', 64), md5(random()::text))"""),
                        {"t": ticket.ticket_id, "e": employee.employee_id})
        project = f.make_project(session, customer=customer)
        session.execute(sa.text("""INSERT INTO project_phases (project_id, phase_name, budget_allocation,
                                   start_date, end_date) VALUES (:p, 'Phase', 100, '2026-01-01', '2026-02-01')"""),
                        {"p": project.project_id})
        entry = f.make_time_entry(session, employee=employee, ticket=ticket, approval_status="approved")
        invoice = f.make_invoice(session, customer=customer, invoice_status="sent")
        f.make_line(session, invoice, time_entry_id=entry.entry_id, item_type="hourly_work")
        draft = f.make_invoice(session, customer=customer)
        f.make_line(session, draft)
        ids[name] = {"customer": customer.customer_id, "ticket": ticket.ticket_id, "project": project.project_id,
                     "invoice": invoice.invoice_id, "draft": draft.invoice_id, "contact": contact.contact_id}
    return ids


@contextmanager
def as_contact_of(session, customer_id, contact_id=None):
    if contact_id is None:
        contact_id = session.execute(sa.text("SELECT min(contact_id) FROM contacts WHERE customer_id = :c"),
                                     {"c": customer_id}).scalar_one()
    apply_contact_scope(session, customer_id, contact_id)
    try:
        yield
    finally:
        clear_contact_scope(session)


def _count(session, sql, **params):
    return session.execute(sa.text(sql), params).scalar_one()


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_forgotten_filter_returns_only_own_rows(session, two_customers, table):
    staff_sees = _count(session, f"SELECT count(*) FROM {table}")
    with as_contact_of(session, two_customers["a"]["customer"]):
        own = _count(session, f"SELECT count(*) FROM {table}")
    with as_contact_of(session, two_customers["b"]["customer"]):
        other = _count(session, f"SELECT count(*) FROM {table}")
    assert own > 0 and other > 0
    assert own + other <= staff_sees


def test_a_contact_reads_only_its_own_customers_months_not_yet_invoiced(session, two_customers):
    for name, hours in (("a", 3), ("b", 5)):
        session.execute(sa.text("INSERT INTO report_uninvoiced_months VALUES (:c, '2026-05-01', :h, 1, now())"),
                        {"c": two_customers[name]["customer"], "h": hours})
    with as_contact_of(session, two_customers["a"]["customer"]):
        rows = session.execute(sa.text("SELECT customer_id, hours FROM report_uninvoiced_months")).all()
        with pytest.raises(sa.exc.ProgrammingError):  # and writes none
            with session.begin_nested():
                session.execute(sa.text("DELETE FROM report_uninvoiced_months"))
    assert rows == [(two_customers["a"]["customer"], 3)]


def test_other_customers_rows_are_invisible_by_id(session, two_customers):
    b = two_customers["b"]
    with as_contact_of(session, two_customers["a"]["customer"]):
        assert _count(session, "SELECT count(*) FROM support_tickets WHERE ticket_id = :i", i=b["ticket"]) == 0
        assert _count(session, "SELECT count(*) FROM invoices WHERE invoice_id = :i", i=b["invoice"]) == 0
        assert _count(session, "SELECT count(*) FROM projects WHERE project_id = :i", i=b["project"]) == 0
        assert _count(session, "SELECT count(*) FROM ticket_comments WHERE ticket_id = :i", i=b["ticket"]) == 0
        assert _count(session, "SELECT count(*) FROM customers WHERE customer_id = :i", i=b["customer"]) == 0


def test_internal_notes_and_drafts_never_reach_contacts(session, two_customers):
    a = two_customers["a"]
    with as_contact_of(session, a["customer"]):
        assert _count(session, "SELECT count(*) FROM ticket_comments WHERE is_internal") == 0
        assert _count(session, "SELECT count(*) FROM ticket_comments") == 1
        assert _count(session, "SELECT count(*) FROM invoices WHERE invoice_id = :i", i=a["draft"]) == 0
        assert _count(session, "SELECT count(*) FROM invoice_line_items WHERE invoice_id = :i", i=a["draft"]) == 0


def _refused(session, sql, params=None, match="row-level security|permission denied"):
    nested = session.begin_nested()
    with pytest.raises(sa.exc.DBAPIError, match=match):
        session.execute(sa.text(sql), params or {})
    nested.rollback()


def test_other_customers_rows_cannot_be_changed_or_created(session, two_customers):
    a, b = two_customers["a"], two_customers["b"]
    with as_contact_of(session, a["customer"], a["contact"]):
        changed = session.execute(sa.text("UPDATE support_tickets SET status = 'closed' WHERE ticket_id = :i"),
                                  {"i": b["ticket"]}).rowcount
        assert changed == 0
        _refused(session, """INSERT INTO support_tickets (ticket_number, customer_id, contact_id, title, description,
                             category) VALUES ('TKT-X', :c, :p, 't', 'd', 'other')""",
                 {"c": b["customer"], "p": a["contact"]})
    assert _count(session, "SELECT count(*) FROM support_tickets WHERE status = 'closed'") == 0


def test_contacts_change_only_what_contacts_may(session, two_customers):
    """Even on their own customer's rows: no staff fields, no speaking for staff or colleagues."""
    a = two_customers["a"]
    colleague = f.make_contact_login(session, customer=session.get(Customer, a["customer"]))
    employee_id = session.execute(sa.text("SELECT min(employee_id) FROM employees")).scalar_one()
    with as_contact_of(session, a["customer"], a["contact"]):
        _refused(session, "UPDATE support_tickets SET assigned_employee_id = NULL, actual_hours = 99"
                          " WHERE ticket_id = :i", {"i": a["ticket"]})
        _refused(session, "INSERT INTO ticket_comments (ticket_id, author_employee_id, body) VALUES (:t, :e, 'x')",
                 {"t": a["ticket"], "e": employee_id})
        _refused(session, "INSERT INTO ticket_comments (ticket_id, author_contact_id, body) VALUES (:t, :c, 'x')",
                 {"t": a["ticket"], "c": colleague.contact_id})
        session.execute(sa.text("INSERT INTO ticket_comments (ticket_id, author_contact_id, body) VALUES (:t, :c, 'ok')"),
                        {"t": a["ticket"], "c": a["contact"]})
        _refused(session, "UPDATE ticket_comments SET body = 'edited'")
        assert _count(session, "SELECT count(*) FROM accounts") == 1  # only one's own login
        assert session.execute(sa.text("UPDATE accounts SET password_hash = 'x' WHERE contact_id = :c"),
                               {"c": colleague.contact_id}).rowcount == 0
        _refused(session, "UPDATE accounts SET locked_until = now() WHERE contact_id = :c", {"c": a["contact"]})
        _refused(session, "INSERT INTO audit_events (actor_type, actor_id, action) VALUES ('contact', :c, 'x')",
                 {"c": colleague.contact_id})
        session.execute(sa.text("INSERT INTO audit_events (actor_type, actor_id, action) VALUES ('contact', :c, 'x')"),
                        {"c": a["contact"]})


def test_contacts_cannot_read_staff_pay_or_the_audit_log(session, two_customers):
    with as_contact_of(session, two_customers["a"]["customer"]):
        assert _count(session, "SELECT count(first_name) FROM employees") > 0
        for sql in ("SELECT hourly_rate_internal FROM employees", "SELECT count(*) FROM audit_events",
                    "SELECT count(*) FROM auth_tokens", "SELECT count(*) FROM login_attempts"):
            nested = session.begin_nested()
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                session.execute(sa.text(sql))
            nested.rollback()


def test_contacts_cannot_grant_themselves_flags(session, two_customers):
    a = two_customers["a"]
    with as_contact_of(session, a["customer"]):
        nested = session.begin_nested()
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            session.execute(sa.text("UPDATE contacts SET is_billing_contact = true WHERE contact_id = :i"),
                            {"i": a["contact"]})
        nested.rollback()
        session.execute(sa.text("UPDATE contacts SET phone = '555-0100' WHERE contact_id = :i"), {"i": a["contact"]})


def test_without_a_customer_set_the_contact_role_sees_nothing(session, two_customers):
    session.execute(sa.text("SET LOCAL ROLE portal_contact"))
    try:
        for table in TENANT_TABLES:
            assert _count(session, f"SELECT count(*) FROM {table}") == 0, table
    finally:
        session.execute(sa.text("RESET ROLE"))


def test_every_table_with_customer_data_is_protected(session):
    """A new table with a customer_id (or under one) must get RLS: this lists the unprotected ones."""
    unprotected = session.execute(sa.text("""
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = current_schema() AND c.relkind = 'r'
          AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity)
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                      AND a.attname IN ('customer_id', 'ticket_id', 'invoice_id', 'project_id', 'contact_id'))
    """)).scalars().all()
    assert unprotected == []


def test_staff_see_everything(session, two_customers):
    assert _count(session, "SELECT count(*) FROM invoices WHERE invoice_id IN (:a, :b)",
                  a=two_customers["a"]["draft"], b=two_customers["b"]["draft"]) == 2


def test_contact_request_runs_under_rls(browser, session, two_customers):
    """The web layer really switches role: a primary contact's home counts only its own tickets."""
    customer_a = session.get(Customer, two_customers["a"]["customer"])
    customer_b = session.get(Customer, two_customers["b"]["customer"])
    contact = f.make_contact_login(session, customer=customer_a, is_primary_contact=True)
    for _ in range(3):
        f.make_ticket(session, customer=customer_b)
    browser.sign_in(contact.email)
    page = browser.get("/portal/").get_data(as_text=True)
    assert '<dd class="stat__value"><a href="/portal/tickets">1</a></dd>' in page  # A's one open ticket, none of B's four


def test_a_forgotten_filter_in_a_contact_request_still_shows_nothing_of_others(browser, session, two_customers,
                                                                             monkeypatch):
    """Replace the home page's query by one that forgets every filter: RLS still holds."""
    from portal.services.dashboards import PortalSummary

    def unfiltered_summary(db_session, principal):
        count = db_session.execute(sa.text("SELECT count(*) FROM support_tickets")).scalar_one()
        return PortalSummary(open_tickets=count, invoices_due=None, phases_awaiting=None)

    customer_b = session.get(Customer, two_customers["b"]["customer"])
    for _ in range(5):
        f.make_ticket(session, customer=customer_b)
    contact = session.get(Contact, two_customers["a"]["contact"])
    monkeypatch.setattr("portal.web.portal.tickets.portal_summary", unfiltered_summary)
    browser.sign_in(contact.email)
    page = browser.get("/portal/").get_data(as_text=True)
    assert '<dd class="stat__value"><a href="/portal/tickets">1</a></dd>' in page


def test_a_contact_cannot_read_the_staff_search_words_of_internal_notes(session, two_customers):
    a = two_customers["a"]
    with as_contact_of(session, a["customer"], a["contact"]):
        _refused(session, "SELECT search_vector FROM support_tickets")
        _refused(session, "SELECT count(*) FROM support_tickets WHERE search_vector @@ to_tsquery('internal')")
        assert _count(session, "SELECT count(*) FROM support_tickets WHERE public_search_vector IS NOT NULL") == 1


def test_a_contacts_new_rows_point_only_at_their_own_customers_rows(session, two_customers):
    a, b = two_customers["a"], two_customers["b"]
    contract_b = session.execute(sa.text("SELECT contract_id FROM service_contracts WHERE customer_id = :c"),
                                 {"c": b["customer"]}).scalar_one()
    other_ticket = f.make_ticket(session, customer=session.get(Customer, a["customer"]))
    reply = session.execute(sa.text("""INSERT INTO ticket_comments (ticket_id, author_contact_id, body)
                                       VALUES (:t, :c, 'on the other ticket') RETURNING comment_id"""),
                            {"t": other_ticket.ticket_id, "c": a["contact"]}).scalar_one()
    with as_contact_of(session, a["customer"], a["contact"]):
        _refused(session, """INSERT INTO support_tickets (ticket_number, customer_id, contact_id, contract_id, title,
                             description, category) VALUES ('TKT-Y', :c, :p, :k, 't', 'd', 'other')""",
                 {"c": a["customer"], "p": a["contact"], "k": contract_b})
        _refused(session, """INSERT INTO ticket_attachments (ticket_id, comment_id, uploaded_by_contact_id, file_name,
                             content_type, size_bytes, sha256, storage_name)
                             VALUES (:t, :r, :c, 'a.txt', 'text/plain', 1, repeat('0', 64), md5('x'))""",
                 {"t": a["ticket"], "r": reply, "c": a["contact"]})


def test_the_managers_email_function_answers_contacts_for_their_own_projects_only(session, two_customers):
    a, b = two_customers["a"], two_customers["b"]
    manager = f.make_employee(session, email="pm@techserv.example")
    session.execute(sa.text("UPDATE projects SET project_manager_id = :m"), {"m": manager.employee_id})
    ask = "SELECT portal_project_manager_email(:p)"
    with as_contact_of(session, a["customer"], a["contact"]):
        assert session.execute(sa.text(ask), {"p": a["project"]}).scalar_one() == "pm@techserv.example"
        assert session.execute(sa.text(ask), {"p": b["project"]}).scalar_one() is None
    privileges = session.execute(sa.text(
        "SELECT has_function_privilege('public', 'portal_project_manager_email(integer)', 'EXECUTE')")).scalar_one()
    assert privileges is False


def test_only_the_opener_rates_a_ticket_and_only_once_even_in_sql(session, two_customers):
    a = two_customers["a"]
    colleague = f.make_contact_login(session, customer=session.get(Customer, a["customer"]))
    primary = f.make_contact_login(session, customer=session.get(Customer, a["customer"]), is_primary_contact=True)
    rate = "UPDATE support_tickets SET customer_satisfaction = :n WHERE ticket_id = :t"
    with as_contact_of(session, a["customer"], colleague.contact_id):
        assert session.execute(sa.text(rate), {"n": 1, "t": a["ticket"]}).rowcount == 0  # not theirs to update
    with as_contact_of(session, a["customer"], primary.contact_id):
        _refused(session, rate, {"n": 1, "t": a["ticket"]}, match="rates it, once")  # sees it, did not open it
    with as_contact_of(session, a["customer"], a["contact"]):
        session.execute(sa.text(rate), {"n": 5, "t": a["ticket"]})
        _refused(session, rate, {"n": 1, "t": a["ticket"]}, match="rates it, once")
    assert _count(session, "SELECT customer_satisfaction FROM support_tickets WHERE ticket_id = :t", t=a["ticket"]) == 5


# --- what a contact may write: exactly what the portal writes for them (migration 0009) ---------

@pytest.fixture
def company(session):
    """A customer with a plain contact, a colleague, a primary contact, a sponsor, and one ticket each."""
    from datetime import UTC, datetime

    customer = f.make_customer(session)
    people = {name: f.make_contact_login(session, customer=customer, **flags) for name, flags in (
        ("plain", {}), ("colleague", {}), ("primary", {"is_primary_contact": True}),
        ("sponsor", {"can_approve_projects": True}), ("other_sponsor", {"can_approve_projects": True}))}
    contract = f.make_contract(session, customer, response_time_hours=4, resolution_time_hours=24)
    created = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    due = {"response_due_at": datetime(2026, 6, 1, 13, 0, tzinfo=UTC),
           "resolution_due_at": datetime(2026, 6, 2, 9, 0, tzinfo=UTC)}
    tickets = {name: f.make_ticket(session, customer=customer, contact_id=people[name].contact_id,
                                   contract_id=contract.contract_id, status="in_progress", created_at=created,
                                   first_response_at=datetime(2026, 6, 1, 10, 0, tzinfo=UTC),
                                   sla_due_at=due["resolution_due_at"],
                                   sla_at_risk_at=datetime(2026, 6, 2, 3, 0, tzinfo=UTC), **due)
               for name in ("plain", "colleague")}
    project = f.make_project(session, customer=customer, project_status="active")
    phases = {}
    for name, requested in (("asked", True), ("not_asked", False)):
        phases[name] = session.execute(sa.text("""
            INSERT INTO project_phases (project_id, phase_name, budget_allocation, start_date, end_date,
                                        requires_approval, approval_requested_at)
            VALUES (:p, :n, 100, '2026-01-01', '2026-02-01', true, CASE WHEN :r THEN now() END)
            RETURNING phase_id"""), {"p": project.project_id, "n": name, "r": requested}).scalar_one()
    return {"customer": customer.customer_id, "people": {k: v.contact_id for k, v in people.items()},
            "tickets": {k: v.ticket_id for k, v in tickets.items()}, "phases": phases}


def _ticket(session, ticket_id):
    return session.execute(sa.text("SELECT status, resolved_at, response_due_at, resolution_due_at, sla_due_at,"
                                   " sla_at_risk_at FROM support_tickets WHERE ticket_id = :t"),
                           {"t": ticket_id}).one()


@pytest.mark.parametrize("change", [
    "status = 'closed'", "status = 'resolved', resolved_at = now()", "resolved_at = now()",
    "sla_due_at = sla_due_at + interval '30 days', sla_at_risk_at = sla_at_risk_at + interval '30 days'",
    "last_activity_at = now()",
])
def test_a_contact_changes_no_colleagues_ticket(session, company, change):
    colleague_ticket = company["tickets"]["colleague"]
    before = _ticket(session, colleague_ticket)
    with as_contact_of(session, company["customer"], company["people"]["plain"]):
        changed = session.execute(sa.text(f"UPDATE support_tickets SET {change} WHERE ticket_id = :t"),
                                  {"t": colleague_ticket}).rowcount
    assert changed == 0 and _ticket(session, colleague_ticket) == before


@pytest.mark.parametrize("change", [
    "status = 'closed'", "status = 'resolved', resolved_at = created_at + interval '1 hour'",
    "status = 'waiting_customer'", "resolved_at = created_at + interval '1 hour'",
    "response_due_at = response_due_at + interval '30 days'",
    "resolution_due_at = resolution_due_at + interval '30 days'",
    "resolution_due_at = resolution_due_at - interval '1 hour'",
    "sla_due_at = sla_due_at + interval '30 days', sla_at_risk_at = sla_at_risk_at + interval '30 days'",
    "sla_due_at = NULL, sla_at_risk_at = NULL",
])
def test_on_its_own_ticket_a_contact_moves_nothing_a_reply_does_not(session, company, change):
    """Even a primary contact: status, resolved_at and the SLA move only as a customer's reply moves them."""
    for who, ticket in (("plain", "plain"), ("primary", "colleague")):
        with as_contact_of(session, company["customer"], company["people"][who]):
            _refused(session, f"UPDATE support_tickets SET {change} WHERE ticket_id = :t",
                     {"t": company["tickets"][ticket]}, match="permission denied|only|SLA deadlines")


def test_a_reply_reopens_a_ticket_as_the_service_does(session, company):
    ticket = company["tickets"]["plain"]
    session.execute(sa.text("UPDATE support_tickets SET status = 'resolved', resolution_notes = 'Done',"
                            " resolved_at = created_at + interval '2 hours', sla_due_at = NULL, sla_at_risk_at = NULL"
                            " WHERE ticket_id = :t"), {"t": ticket})
    with as_contact_of(session, company["customer"], company["people"]["plain"]):
        session.execute(sa.text("UPDATE support_tickets SET status = 'in_progress', resolved_at = NULL,"
                                " last_activity_at = now(), sla_due_at = resolution_due_at,"
                                " sla_at_risk_at = resolution_due_at - interval '6 hours' WHERE ticket_id = :t"),
                        {"t": ticket})
        session.execute(sa.text("INSERT INTO ticket_status_changes (ticket_id, from_status, to_status, actor_type,"
                                " actor_id) VALUES (:t, 'resolved', 'in_progress', 'contact', :c)"),
                        {"t": ticket, "c": company["people"]["plain"]})
    assert _ticket(session, ticket).status == "in_progress"


def test_the_end_of_a_pause_extends_the_resolution_deadline_by_the_wait_and_no_more(session, company):
    ticket = company["tickets"]["plain"]
    session.execute(sa.text("UPDATE support_tickets SET status = 'waiting_customer', sla_due_at = NULL,"
                            " sla_at_risk_at = NULL WHERE ticket_id = :t"), {"t": ticket})
    session.execute(sa.text("INSERT INTO ticket_status_changes (ticket_id, from_status, to_status, changed_at,"
                            " actor_type) VALUES (:t, 'in_progress', 'waiting_customer',"
                            " '2026-06-01 10:00+00', 'employee')"), {"t": ticket})
    with as_contact_of(session, company["customer"], company["people"]["plain"]):
        session.execute(sa.text("INSERT INTO ticket_status_changes (ticket_id, from_status, to_status, changed_at,"
                                " actor_type, actor_id) VALUES (:t, 'waiting_customer', 'in_progress',"
                                " '2026-06-01 12:00+00', 'contact', :c)"),
                        {"t": ticket, "c": company["people"]["plain"]})
        session.execute(sa.text("UPDATE support_tickets SET status = 'in_progress',"
                                " last_activity_at = '2026-06-01 12:00+00' WHERE ticket_id = :t"), {"t": ticket})
        extend = ("UPDATE support_tickets SET resolution_due_at = resolution_due_at + CAST(:wait AS interval),"
                  " sla_due_at = resolution_due_at + CAST(:wait AS interval),"
                  " sla_at_risk_at = resolution_due_at + CAST(:wait AS interval) - interval '6 hours'"
                  " WHERE ticket_id = :t")
        for wrong in ("30 days", "2 hours 1 minute", "1 hour"):
            _refused(session, extend, {"t": ticket, "wait": wrong}, match="SLA deadlines are computed")
        session.execute(sa.text(extend), {"t": ticket, "wait": "2 hours"})
    assert _ticket(session, ticket).resolution_due_at.isoformat() == "2026-06-02T11:00:00+00:00"


def test_a_contact_replies_only_to_open_tickets_it_may_see(session, company):
    people, tickets = company["people"], company["tickets"]
    reply = "INSERT INTO ticket_comments (ticket_id, author_contact_id, body) VALUES (:t, :c, 'x')"
    with as_contact_of(session, company["customer"], people["plain"]):
        _refused(session, reply, {"t": tickets["colleague"], "c": people["plain"]})
        _refused(session, """INSERT INTO ticket_attachments (ticket_id, uploaded_by_contact_id, file_name, content_type,
                             size_bytes, sha256, storage_name) VALUES (:t, :c, 'a.txt', 'text/plain', 1,
                             repeat('0', 64), md5(random()::text))""", {"t": tickets["colleague"], "c": people["plain"]})
        _refused(session, "INSERT INTO ticket_status_changes (ticket_id, from_status, to_status, actor_type, actor_id)"
                          " VALUES (:t, 'in_progress', 'resolved', 'contact', :c)",
                 {"t": tickets["plain"], "c": people["plain"]})
        session.execute(sa.text(reply), {"t": tickets["plain"], "c": people["plain"]})
    with as_contact_of(session, company["customer"], people["primary"]):
        session.execute(sa.text(reply), {"t": tickets["colleague"], "c": people["primary"]})
    session.execute(sa.text("UPDATE support_tickets SET status = 'closed', resolution_notes = 'Done',"
                            " resolved_at = created_at + interval '1 hour', closed_at = created_at + interval '2 hours',"
                            " sla_due_at = NULL, sla_at_risk_at = NULL WHERE ticket_id = :t"), {"t": tickets["plain"]})
    with as_contact_of(session, company["customer"], people["plain"]):
        _refused(session, reply, {"t": tickets["plain"], "c": people["plain"]})


def _phase(session, phase_id):
    return session.execute(sa.text("SELECT phase_status, approved_at, approved_by_contact_id, rejected_at"
                                   " FROM project_phases WHERE phase_id = :p"), {"p": phase_id}).one()


def test_only_a_sponsor_decides_a_phase_and_only_by_deciding(session, company):
    people, phases = company["people"], company["phases"]
    approve = "UPDATE project_phases SET approved_at = now(), approved_by_contact_id = :c WHERE phase_id = :p"
    for who in ("plain", "primary"):
        with as_contact_of(session, company["customer"], people[who]):
            assert session.execute(sa.text(approve), {"c": people[who], "p": phases["asked"]}).rowcount == 0
            _refused(session, "UPDATE project_phases SET phase_status = 'completed' WHERE phase_id = :p",
                     {"p": phases["asked"]})
    with as_contact_of(session, company["customer"], people["sponsor"]):
        _refused(session, "UPDATE project_phases SET phase_status = 'completed' WHERE phase_id = :p",
                 {"p": phases["asked"]})
        _refused(session, approve, {"c": people["sponsor"], "p": phases["not_asked"]}, match="sent for approval")
        _refused(session, "UPDATE project_phases SET rejected_at = now(), rejected_by_contact_id = :c"
                          " WHERE phase_id = :p", {"c": people["sponsor"], "p": phases["asked"]}, match="reason")
        _refused(session, approve, {"c": people["other_sponsor"], "p": phases["asked"]}, match="sponsor who makes it")
        session.execute(sa.text(approve), {"c": people["sponsor"], "p": phases["asked"]})
    with as_contact_of(session, company["customer"], people["other_sponsor"]):
        _refused(session, "UPDATE project_phases SET approved_at = NULL, approved_by_contact_id = NULL,"
                          " rejected_at = now(), rejection_reason = 'No', rejected_by_contact_id = :c"
                          " WHERE phase_id = :p", {"c": people["other_sponsor"], "p": phases["asked"]},
                 match="sent for approval")
    assert _phase(session, phases["asked"])[2] == people["sponsor"]
    assert _phase(session, phases["not_asked"])[1] is None


def test_a_contact_retires_only_its_own_login_links(session, company):
    from datetime import UTC, datetime, timedelta

    from portal.models import Account
    from portal.services.auth import issue_link_token

    accounts = {who: session.scalar(sa.select(Account).where(Account.contact_id == company["people"][who]))
                for who in ("plain", "colleague")}
    now = datetime(2026, 11, 25, tzinfo=UTC)
    for account in accounts.values():
        issue_link_token(session, account, "password_reset", secret_key="k", now=now)
    session.flush()
    with as_contact_of(session, company["customer"], company["people"]["plain"]):
        session.execute(sa.text("SELECT portal_retire_own_login_links(:at)"), {"at": now + timedelta(minutes=1)})
        _refused(session, "UPDATE auth_tokens SET used_at = NULL")
    open_links = dict(session.execute(sa.text(
        "SELECT account_id, count(*) FILTER (WHERE used_at IS NULL) FROM auth_tokens WHERE account_id IN (:a, :b)"
        " GROUP BY account_id"), {"a": accounts["plain"].account_id, "b": accounts["colleague"].account_id}).all())
    assert open_links == {accounts["plain"].account_id: 0, accounts["colleague"].account_id: 1}
