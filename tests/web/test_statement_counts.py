"""The N+1 guard: every GET page of the URL map, for every persona that can open it, sends the same
number of SQL statements on a small data set and on a larger one, and never more than 12.

How it works. One world is built with the factories: a customer with a contact of each kind, an
employee of each role, a ticket with comments, time and an attachment, a project with a phase, a
sent invoice with lines, a webhook subscription, audit events. Every GET route (pages and the
REST API's lists and items) is opened by every persona; those that answer as expected (200, or the
code in EXPECTED) are measured. Then the world grows (GROW more of every row: tickets, comments,
entries, invoices, lines, projects, phases, contacts, employees, audit events) and the same
requests are measured again. A page whose count changed has an N+1 (or a query per row of a list).

A route added later is walked too. Its URL arguments are filled from ARGUMENTS (argument name ->
the world's id) and its query string from QUERY. A route whose argument has no filler, or that no
persona could open, FAILS with a message naming the route and what to add here: extend
ARGUMENTS / QUERY / EXPECTED (one line each) rather than skipping it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from portal.models import Account, InvoiceRun, InvoiceRunItem, ProjectPhase, TicketComment, WebhookSubscription
from portal.services import auth
from tests import factories as f

MAX_STATEMENTS = 12
GROW = 30  # more of every row than a page shows (lists paginate at 25)

STAFF = ["technician", "senior_technician", "project_manager", "account_manager", "admin"]
CONTACTS = {
    "contact": {},  # opens tickets; sees its own
    "primary_billing_sponsor": {"is_primary_contact": True, "is_billing_contact": True, "can_approve_projects": True},
}
PERSONAS = ["anonymous", *STAFF, *CONTACTS, "api"]

# Routes whose normal answer is not 200 (what they answer with the world's data).
EXPECTED = {
    "main.home": 302,                 # to the person's home
    "auth.verify_second_factor": 302,  # nobody half signed in
    "main.readyz": 503,               # no worker beside the test database
}
# Routes not measured, and why (keep it short: every entry here is a page nobody guards).
NOT_MEASURED = {
    "static": "files, no SQL",
}

# URL argument -> the world's value for it. A new route with a new argument: add a line here.
ARGUMENTS = {
    "ticket_id": lambda w: w.ticket_id,
    "attachment_id": lambda w: w.attachment_id,
    "invoice_id": lambda w: w.invoice_id,
    "project_id": lambda w: w.project_id,
    "phase_id": lambda w: w.phase_id,
    "customer_id": lambda w: w.customer_id,
    "contact_id": lambda w: w.contact_id,
    "employee_id": lambda w: w.employee_id,
    "entry_id": lambda w: w.entry_id,
    "contract_id": lambda w: w.contract_id,
    "subscription_id": lambda w: w.subscription_id,
    "token": lambda w: "not-a-real-token",
    "run_id": lambda w: w.run_id,
    "name": lambda w: "profitability",  # api.get_report: one report (each has its page measured too)
}
# Query strings some routes need to show something (pickers search).
QUERY = {
    "tickets.customer_picker": "customer_q=Guard",
    "staff.customer_filter_options": "customer_q=Guard",
    "tickets.contact_picker": "customer_id={customer_id}",
    "time.work_picker": "work_q=Guard",
}


@dataclass
class World:
    customer_id: int
    contact_id: int
    employee_id: int
    ticket_id: int
    attachment_id: int
    invoice_id: int
    project_id: int
    phase_id: int
    entry_id: int
    contract_id: int
    subscription_id: int
    run_id: int
    people: dict
    api_token: str


def _rows(session, world, *, n: int, customer, contact, employees) -> None:
    """n of every row the pages list, around the world's customer, ticket and project."""
    ticket = session.get(f.SupportTicket, world.ticket_id)
    project = session.get(f.Project, world.project_id)
    for i in range(n):
        t = f.make_ticket(session, customer=customer, contact_id=contact.contact_id, title=f"Guard ticket {i}",
                          assigned_employee_id=employees[i % len(employees)].employee_id, status="assigned",
                          assigned_at=datetime(2026, 6, 1, 10, tzinfo=UTC))
        session.add(TicketComment(ticket_id=world.ticket_id, author_contact_id=contact.contact_id if i % 2 else None,
                                  author_employee_id=None if i % 2 else employees[i % len(employees)].employee_id,
                                  body=f"Comment {i}", is_internal=i % 4 == 0))
        session.add(TicketComment(ticket_id=t.ticket_id, author_employee_id=employees[0].employee_id, body="Hi"))
        f.make_attachment(session, ticket, file_name=f"log{i}.txt")
        for e in employees:
            f.make_time_entry(session, employee=e, ticket=ticket if i % 2 else t,
                              work_date=date.today() - timedelta(days=i % 5), approval_status="pending")
            f.make_time_entry(session, employee=e, project=project, work_date=date.today() - timedelta(days=i % 5),
                              work_category="project")
        invoice = f.make_invoice(session, customer=customer, invoice_status="sent")
        f.make_line(session, invoice)
        other = f.make_project(session, customer=customer, project_manager_id=employees[i % len(employees)].employee_id,
                               project_name=f"Guard project {i}")
        for p in (project, other):
            session.add(ProjectPhase(project_id=p.project_id, phase_name=f"Phase {i}", budget_allocation=1,
                                     start_date=p.start_date, end_date=p.planned_end_date,
                                     requires_approval=True, approval_requested_at=sa.func.now()))
        f.make_contact(session, customer=customer)
        f.make_employee(session)
        billed = f.make_customer(session, company_name=f"Guard customer {f._n()}")
        session.add(InvoiceRunItem(run_id=world.run_id, customer_id=billed.customer_id,
                                   outcome=("made", "nothing", "failed")[i % 3], reason=None if i % 3 != 2 else "x"))
        f.make_contract(session, customer=customer, contract_status="expired", start_date=date(2020, 1, 1), end_date=date(2020, 12, 31))
    session.execute(sa.text(
        "INSERT INTO audit_events (actor_type, actor_id, action, table_name, row_id, changes) "
        "SELECT 'employee', :e, 'ticket.updated', 'support_tickets', :t, '{}'::jsonb FROM generate_series(1, :n)"),
        {"e": employees[0].employee_id, "t": world.ticket_id, "n": n})
    session.flush()


def _build(session) -> World:
    from tests.api.conftest import make_client

    customer = f.make_customer(session, company_name="Guard Company")
    contract = f.make_contract(session, customer=customer, start_date=date.today() - timedelta(days=200),
                               end_date=date.today() + timedelta(days=165))
    people = {role: f.make_staff(session, role=role) for role in STAFF}
    people.update({kind: f.make_contact_login(session, customer=customer, **flags) for kind, flags in CONTACTS.items()})
    contact = people["contact"]
    ticket = f.make_ticket(session, customer=customer, contact_id=contact.contact_id, contract_id=contract.contract_id,
                           assigned_employee_id=people["technician"].employee_id, status="assigned",
                           assigned_at=datetime(2026, 6, 1, 10, tzinfo=UTC))
    attachment = f.make_attachment(session, ticket, contact=contact)
    project = f.make_project(session, customer=customer, project_manager_id=people["project_manager"].employee_id)
    phase = ProjectPhase(project_id=project.project_id, phase_name="Phase", budget_allocation=1,
                         start_date=project.start_date, end_date=project.planned_end_date)
    session.add(phase)
    invoice = f.make_invoice(session, customer=customer, invoice_status="sent")
    f.make_line(session, invoice)
    entry = f.make_time_entry(session, employee=people["technician"], ticket=ticket)
    session.flush()
    _, _, token = make_client(session)
    subscription = WebhookSubscription(url="https://hooks.example.com/guard", event_types=["ticket.created"],
                                       secret="not-a-secret", is_active=False)
    session.add(subscription)
    run = InvoiceRun(period_start=date(2026, 6, 1), period_end=date(2026, 6, 30), status="done", started_by="Guard")
    session.add(run)
    session.flush()
    world = World(customer_id=customer.customer_id, contact_id=contact.contact_id,
                  employee_id=people["technician"].employee_id, ticket_id=ticket.ticket_id,
                  attachment_id=attachment.attachment_id, invoice_id=invoice.invoice_id,
                  project_id=project.project_id, phase_id=phase.phase_id, entry_id=entry.entry_id,
                  contract_id=contract.contract_id, subscription_id=subscription.subscription_id, run_id=run.run_id, people=people,
                  api_token=token)
    _rows(session, world, n=1, customer=customer, contact=contact, employees=[people[r] for r in STAFF])
    return world


def _sign_in(client, session, person) -> None:
    account = session.scalar(sa.select(Account).where(Account.email == person.email))
    token = auth.start_login_session(session, account, ip=None, user_agent="statement guard")
    with client.session_transaction() as cookie:
        cookie["login_session"] = token
        cookie["_user_id"] = f"{account.account_id}.{account.session_version}"
        cookie["_fresh"] = True
        cookie["last_seen"] = time.time()
        cookie["csrf_token"] = "statement-guard-csrf-secret"


def _url(rule, world) -> str:
    missing = [a for a in rule.arguments if a not in ARGUMENTS]
    if missing:
        pytest.fail(f"N+1 guard: route {rule.endpoint} ({rule.rule}) has URL argument(s) {missing} it cannot fill: "
                    f"add them to ARGUMENTS in tests/web/test_statement_counts.py")
    path = rule.build({a: ARGUMENTS[a](world) for a in rule.arguments}, append_unknown=False)[1]
    query = QUERY.get(rule.endpoint)
    return f"{path}?{query.format(**vars(world))}" if query else path


def _count(session, request) -> tuple[int, int, list[str]]:
    statements: list[str] = []
    engine = session.get_bind().engine
    listener = lambda conn, cursor, statement, *a: statements.append(statement)  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = request()
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    real = [s for s in statements if not s.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))]
    return response.status_code, len(real), real


def _get_routes(app):
    return sorted((r for r in app.url_map.iter_rules() if "GET" in r.methods and r.endpoint not in NOT_MEASURED),
                  key=lambda r: r.rule)


def _measure(app, session, world) -> dict:
    """{(endpoint, persona): (status, statements, sql)} for every GET route and persona."""
    clients = {}
    for persona in PERSONAS:
        client = app.test_client()
        if persona in world.people:
            _sign_in(client, session, world.people[persona])
        clients[persona] = client
    results = {}
    for rule in _get_routes(app):
        url = _url(rule, world)
        api = rule.endpoint.startswith("api.")
        for persona in (["api", "anonymous"] if api else [p for p in PERSONAS if p != "api"]):
            headers = {"Authorization": f"Bearer {world.api_token}"} if persona == "api" else {}
            client = clients[persona]
            client.get(url, headers=headers)  # once to warm what a first visit does once (caches, a session touch)
            results[(rule.endpoint, persona)] = _count(session, lambda: client.get(url, headers=headers))
    return results


def test_no_page_sends_more_statements_as_the_data_grows(app, session):
    world = _build(session)
    small = _measure(app, session, world)
    customer = session.get(f.Customer, world.customer_id)
    _rows(session, world, n=GROW, customer=customer, contact=world.people["contact"],
          employees=[world.people[r] for r in STAFF])
    large = _measure(app, session, world)

    problems = []
    for rule in _get_routes(app):
        want = EXPECTED.get(rule.endpoint, 200)
        opened = [(p, small[k], large[k]) for k in small if k[0] == rule.endpoint and small[k][0] == want
                  for p in [k[1]]]
        if not opened:
            answers = {k[1]: v[0] for k, v in small.items() if k[0] == rule.endpoint}
            problems.append(f"{rule.endpoint} ({rule.rule}): no persona got {want} (answers {answers}); "
                            "give it ids in ARGUMENTS / a query in QUERY / its code in EXPECTED")
            continue
        for persona, (_, n_small, sql_small), (code, n_large, sql_large) in opened:
            if code != want:
                problems.append(f"{rule.endpoint} as {persona}: {want} on small data, {code} on larger data")
            elif n_large != n_small:
                extra = [s.split("\n")[0][:160] for s in sql_large]
                problems.append(f"{rule.endpoint} as {persona}: {n_small} statements on small data, {n_large} on "
                                f"larger data (grows with the data):\n      " + "\n      ".join(extra))
            elif n_large > MAX_STATEMENTS:
                extra = [s.split("\n")[0][:160] for s in sql_large]
                problems.append(f"{rule.endpoint} as {persona}: {n_large} statements (> {MAX_STATEMENTS}):\n      "
                                + "\n      ".join(extra))
    assert not problems, "N+1 guard:\n  " + "\n  ".join(problems)


def test_the_guard_sees_a_query_per_row(app, session, monkeypatch):
    """The guard can fail: a page that runs one more statement per row of its list is caught."""
    from portal.web.staff import tickets as staff_tickets

    world = _build(session)
    original = staff_tickets.render

    def leaky(template, **context):
        for ticket in session.execute(sa.text("SELECT ticket_id FROM support_tickets WHERE customer_id = :c LIMIT 25"),
                                      {"c": world.customer_id}).scalars():
            session.execute(sa.text("SELECT 1 FROM support_tickets WHERE ticket_id = :t"), {"t": ticket})
        return original(template, **context)

    monkeypatch.setattr(staff_tickets, "render", leaky)
    client = app.test_client()
    _sign_in(client, session, world.people["admin"])
    _, before, _ = _count(session, lambda: client.get("/staff/tickets/"))
    customer = session.get(f.Customer, world.customer_id)
    _rows(session, world, n=5, customer=customer, contact=world.people["contact"],
          employees=[world.people[r] for r in STAFF])
    _, after, _ = _count(session, lambda: client.get("/staff/tickets/"))
    assert after > before


def test_every_argument_of_every_get_route_has_a_filler(app):
    """Fails fast, naming the route, when a new route takes an argument the guard cannot fill."""
    missing = {r.endpoint: sorted(set(r.arguments) - set(ARGUMENTS)) for r in _get_routes(app)
               if set(r.arguments) - set(ARGUMENTS)}
    assert not missing, f"add these URL arguments to ARGUMENTS in tests/web/test_statement_counts.py: {missing}"

