"""The audit log page's service (services/audit_log.py): filters return exactly the matching events
(checked against SQL written here, independently), keyset pages visit every event once, the
events read as people say them, and the CSV neutralises spreadsheet formulas."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import Account, ActorType
from portal.services import audit, auth, clock, tickets
from portal.services.actors import Actor
from portal.services.audit_log import PAGE_SIZE, AuditFilters, Subject, audit_csv, audit_page, neutralise
from portal.services.errors import Forbidden, Invalid
from tests import factories as f

T0 = datetime(2031, 3, 2, 15, 0, tzinfo=UTC)  # a year of its own, so other data never mixes in


def _principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


@pytest.fixture
def admin(session):
    return _principal(session, f.make_staff(session, role="admin"))


@pytest.fixture
def log(session):
    """A few hundred events of every kind of actor and object, spread over three days of 2031."""
    people = [f.make_employee(session, first_name=name, last_name="Tester") for name in ("Ada", "Ben", "Cy")]
    contact = f.make_contact(session)
    ticket = f.make_ticket(session, ticket_number=f"TKT-2031-{f._n():06d}")
    invoice = f.make_invoice(session, invoice_number=f"INV-2031-{f._n():05d}")
    project = f.make_project(session, project_number=f"PRJ-2031-{f._n():03d}")
    actors = [Actor(ActorType.EMPLOYEE, p.employee_id, p.full_name) for p in people] + [
        Actor(ActorType.CONTACT, contact.contact_id, contact.full_name),
        Actor(ActorType.API_CLIENT, 7, "Zapier"), Actor(ActorType.SYSTEM, None, "scheduler")]
    subjects = [("support_tickets", ticket.ticket_id, "ticket.assigned",
                 {"assigned_employee_id": (None, people[0].employee_id)}),
                ("invoices", invoice.invoice_id, "invoice.overdue", {"invoice_status": ("sent", "overdue")}),
                ("projects", project.project_id, "project.updated", {"budget_amount": (D("100"), D("250.50"))}),
                ("employees", people[1].employee_id, "employee.updated", {"hourly_rate_client": ("95.00", "110.00")}),
                (None, None, "login.failed", {"email": (None, "who@example.com")})]
    for i in range(240):
        table, row_id, action, changes = subjects[i % len(subjects)]
        # Some events share a moment (one transaction writes several): the keyset must keep them apart.
        audit.record(session, actors[i % len(actors)], action, table=table, row_id=row_id, changes=changes,
                     at=T0 + timedelta(minutes=17 * (i // 2)))
    return {"people": people, "contact": contact, "ticket": ticket, "invoice": invoice, "project": project}


def _all(session, admin, filters: AuditFilters) -> list[int]:
    """Every event the page shows for `filters`, walking the keyset pages from newest to oldest."""
    ids, page = [], audit_page(session, admin, filters)
    while True:
        assert len(page.rows) <= PAGE_SIZE
        ids += [row.event_id for row in page.rows]
        if page.older is None:
            return ids
        page = audit_page(session, admin, AuditFilters(**{**filters.__dict__, "before": page.older, "after": None}))


def _expected(session, where: str, **params) -> list[int]:
    """The same question in plain SQL, written here without the service's code."""
    return list(session.scalars(sa.text(
        f"SELECT event_id FROM audit_events WHERE occurred_at >= '2031-01-01' AND {where} "
        "ORDER BY occurred_at DESC, event_id DESC"), params))


YEAR = dict(date_from=date(2031, 1, 1))


def test_filters_return_exactly_the_matching_events(session, admin, log):
    ada, ben, _ = log["people"]
    cases = [
        (AuditFilters(**YEAR), "true", {}),
        (AuditFilters(actor=f"employee:{ada.employee_id}", **YEAR), "actor_type = 'employee' AND actor_id = :a",
         {"a": ada.employee_id}),
        (AuditFilters(actor="contact", **YEAR), "actor_type = 'contact'", {}),
        (AuditFilters(actor="api_client:7", **YEAR), "actor_type = 'api_client' AND actor_id = 7", {}),
        (AuditFilters(actor="system", **YEAR), "actor_type = 'system'", {}),
        (AuditFilters(table="invoices", **YEAR), "table_name = 'invoices'", {}),
        (AuditFilters(object=log["ticket"].ticket_number.lower(), **YEAR),
         "table_name = 'support_tickets' AND row_id = :t", {"t": log["ticket"].ticket_id}),
        (AuditFilters(object=log["invoice"].invoice_number, **YEAR), "table_name = 'invoices' AND row_id = :i",
         {"i": log["invoice"].invoice_id}),
        (AuditFilters(table="projects", object=str(log["project"].project_id), **YEAR),
         "table_name = 'projects' AND row_id = :p", {"p": log["project"].project_id}),
        (AuditFilters(table="employees", object=ben.employee_number, **YEAR),
         "table_name = 'employees' AND row_id = :b", {"b": ben.employee_id}),
        (AuditFilters(action="login.failed", **YEAR), "action = 'login.failed'", {}),
        (AuditFilters(date_from=date(2031, 3, 3), date_to=date(2031, 3, 3)),
         "occurred_at >= '2031-03-03 00:00 America/Denver' AND occurred_at < '2031-03-04 00:00 America/Denver'", {}),
        (AuditFilters(actor="system", table="invoices", date_from=date(2031, 3, 2), date_to=date(2031, 3, 4)),
         "actor_type = 'system' AND table_name = 'invoices' AND occurred_at >= '2031-03-02 00:00 America/Denver' "
         "AND occurred_at < '2031-03-05 00:00 America/Denver'", {}),
        (AuditFilters(object="TKT-2031-999999", **YEAR), "false", {}),
    ]
    for filters, where, params in cases:
        expected = _expected(session, where, **params)
        assert _all(session, admin, filters) == expected, filters
        assert where == "false" or expected, f"the case {filters} checks nothing"


def test_newer_and_older_pages_visit_every_event_once_in_order(session, admin, log):
    filters = AuditFilters(**YEAR)
    newest = audit_page(session, admin, filters)
    assert newest.newer is None and newest.older == newest.rows[-1].event_id
    second = audit_page(session, admin, AuditFilters(**YEAR, before=newest.older))
    third = audit_page(session, admin, AuditFilters(**YEAR, before=second.older))
    assert len(third.rows) == PAGE_SIZE and third.older and third.newer == third.rows[0].event_id
    assert len(_all(session, admin, filters)) == 240
    back = audit_page(session, admin, AuditFilters(**YEAR, after=third.newer))
    assert [r.event_id for r in back.rows] == [r.event_id for r in second.rows]
    again = audit_page(session, admin, AuditFilters(**YEAR, after=back.newer))
    assert [r.event_id for r in again.rows] == [r.event_id for r in newest.rows] and again.newer is None
    moments = [(r.at, r.event_id) for r in newest.rows + second.rows + third.rows]
    assert moments == sorted(moments, reverse=True) and len(set(moments)) == len(moments)


def test_each_event_says_who_what_and_on_which_object(session, admin, log):
    ada, ben, _ = log["people"]
    rows = {row.action: row for row in audit_page(session, admin, AuditFilters(**YEAR)).rows}
    assigned = rows["ticket.assigned"]
    assert (assigned.object_kind, assigned.object_label, assigned.what) == (
        "Ticket", log["ticket"].ticket_number, "Assigned to Ada Tester")
    assert rows["invoice.overdue"].what == "Status: Sent → Overdue"
    assert rows["project.updated"].what == "Budget: $100.00 → $250.50"
    assert (rows["employee.updated"].object_label, rows["employee.updated"].what) == (
        "Ben Tester", "Client rate: $95.00 → $110.00")
    failed = rows["login.failed"]
    assert failed.object_label is None and failed.what == "Sign-in failed (who@example.com)"
    kinds = {row.actor_kind for row in rows.values()} | {
        row.actor_kind for row in audit_page(session, admin, AuditFilters(actor="system", **YEAR)).rows}
    assert {"Employee", "System"} <= kinds
    zapier = audit_page(session, admin, AuditFilters(actor="api_client:7", **YEAR))
    assert zapier.actor_label == "Zapier" and {r.actor_kind for r in zapier.rows} == {"API client"}
    system = audit_page(session, admin, AuditFilters(actor="system", **YEAR)).rows[0]
    assert system.who == "TechServ Portal (scheduler)"


def test_the_filtered_object_is_named_even_without_events(session, admin, log):
    ticket = f.make_ticket(session, ticket_number=f"TKT-2031-{f._n():06d}", title="Quiet printer")
    page = audit_page(session, admin, AuditFilters(object=ticket.ticket_number))
    assert page.rows == [] and page.subject == Subject("support_tickets", ticket.ticket_id, "Ticket",
                                                       ticket.ticket_number, "Quiet printer")
    page = audit_page(session, admin, AuditFilters(table="support_tickets", object=str(ticket.ticket_id)))
    assert page.subject == Subject("support_tickets", ticket.ticket_id, "Ticket", ticket.ticket_number, "Quiet printer")
    missing = audit_page(session, admin, AuditFilters(object="INV-2031-99999"))
    assert missing.rows == [] and missing.subject == Subject("invoices", None, "Invoice", "INV-2031-99999", None)


@pytest.mark.parametrize("filters, field, message", [
    (AuditFilters(object="123"), "object", "An id alone names nothing: choose its kind, or type a number like "
                                           "TKT-2026-000123."),
    (AuditFilters(table="support_tickets", object="printer"), "object",
     "Type the ticket's number, like TKT-2026-000123, or its id."),
    (AuditFilters(table="nonsense"), "table", "Choose the kind of object from the list."),
    (AuditFilters(actor="boss"), "actor", "Choose who acted from the list."),
    (AuditFilters(date_from=date(2031, 3, 3), date_to=date(2031, 3, 2)), "date_to",
     "The end of the period cannot be before its start."),
])
def test_a_filter_that_names_nothing_says_so(session, admin, filters, field, message):
    with pytest.raises(Invalid) as caught:
        audit_page(session, admin, filters)
    assert caught.value.field == field
    if message:
        assert caught.value.message == message


def test_only_admins_read_the_log(session):
    for role in ("technician", "senior_technician", "project_manager", "account_manager"):
        with pytest.raises(Forbidden):
            audit_page(session, _principal(session, f.make_staff(session, role=role)), AuditFilters())
        with pytest.raises(Forbidden):
            audit_csv(session, _principal(session, f.make_staff(session, role=role)), AuditFilters())


def test_the_csv_is_the_whole_filtered_view_with_formulas_neutralised(session, admin, log):
    evil = f.make_ticket(session, ticket_number=f"TKT-2031-{f._n():06d}", title="=HYPERLINK(\"http://x\")")
    audit.record(session, Actor(ActorType.CONTACT, log["contact"].contact_id, "@SUM(A1:A9)"), "ticket.created",
                 table="support_tickets", row_id=evil.ticket_id, changes={"priority": (None, "high")}, at=T0)
    audit.record(session, Actor(ActorType.SYSTEM, None, "-2+3"), "ticket.updated", table="support_tickets",
                 row_id=evil.ticket_id, changes={"priority": ("high", "low")}, at=T0)
    text, count = audit_csv(session, admin, AuditFilters(object=evil.ticket_number, before=12345))
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["When", "Who", "Kind of actor"] and count == len(rows) - 1 == 2
    by_who = {row[1]: row for row in rows[1:]}
    assert by_who["'@SUM(A1:A9)"][4:7] == ["Ticket opened", "Ticket", evil.ticket_number]
    assert "TechServ Portal (-2+3)" in by_who  # starts with a letter: left alone
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    everything, total = audit_csv(session, admin, AuditFilters(**YEAR))
    assert total == len(_expected(session, "true"))


@pytest.mark.parametrize("cell, safe", [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"),
                                        ("\tx", "'\tx"), ("plain", "plain"), (None, ""), (12, "12")])
def test_neutralise(cell, safe):
    assert neutralise(cell) == safe


def test_the_log_reads_a_real_ticket_story(session, admin):
    customer = f.make_customer(session)
    f.make_contract(session, customer=customer, start_date=date(2026, 1, 1), end_date=date(2027, 12, 31))
    senior = _principal(session, f.make_staff(session, role="senior_technician", first_name="John", last_name="Davis"))
    amanda = f.make_staff(session, first_name="Amanda", last_name="Lee")
    contact = _principal(session, f.make_contact_login(session, customer=customer))
    now = clock.now()
    ticket = tickets.open_ticket(session, contact, tickets.NewTicket(title="VPN down", description="Since 9.",
                                                                     category="network", priority="high"), now=now)
    tickets.assign(session, senior, ticket, amanda.employee_id, expected_version=ticket.version, now=now)
    page = audit_page(session, admin, AuditFilters(object=ticket.ticket_number))
    assert [(r.who, r.what) for r in reversed(page.rows)] == [
        (contact.name, "Opened with priority High"), ("John Davis", "Assigned to Amanda Lee")]
    assert (page.subject.kind, page.subject.label, page.subject.detail) == ("Ticket", ticket.ticket_number, "VPN down")
