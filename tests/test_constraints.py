"""Every CHECK constraint rejects the bad row and accepts the good one, under its seed name."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import Account, AuthToken, ProjectPhase, TicketAttachment, TicketComment
from tests import factories as f

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
BEFORE = T0 - timedelta(minutes=1)


def _phase(session, **kw):
    project = f.make_project(session)
    values = dict(project_id=project.project_id, phase_name="Phase", budget_allocation=D("100.00"),
                  start_date=date(2026, 2, 1), end_date=date(2026, 3, 1))
    values.update(kw)
    session.add(ProjectPhase(**values))


def _comment(session, **kw):
    ticket = f.make_ticket(session)
    employee = f.make_employee(session)
    values = dict(ticket_id=ticket.ticket_id, author_employee_id=employee.employee_id, body="Hello")
    values.update(kw)
    if values.pop("by_contact", False):
        values["author_contact_id"] = f.make_contact(session).contact_id
    session.add(TicketComment(**values))


def _attachment(session, **kw):
    ticket = f.make_ticket(session)
    values = dict(ticket_id=ticket.ticket_id, uploaded_by_employee_id=f.make_employee(session).employee_id,
                  file_name="log.txt", content_type="text/plain", size_bytes=10, sha256="0" * 64,
                  storage_name=f"{f._n():032x}")
    values.update(kw)
    if values.pop("by_both", False):
        values["uploaded_by_contact_id"] = f.make_contact(session).contact_id
    session.add(TicketAttachment(**values))


def _account(session, owner="contact", **kw):
    values = dict(email=f"login{id(kw)}@example.com")
    if owner in ("contact", "both"):
        values["contact_id"] = f.make_contact(session).contact_id
    if owner in ("employee", "both"):
        values["employee_id"] = f.make_employee(session).employee_id
    values.update(kw)
    session.add(Account(**values))


def _payment(session, **kw):
    from portal.models import Payment

    invoice = f.make_invoice(session)
    values = dict(invoice_id=invoice.invoice_id, customer_id=invoice.customer_id, payment_date=date(2026, 7, 2),
                  amount=D("10.00"), method="bank_transfer")
    values.update(kw)
    session.add(Payment(**values))


def _run(session, **kw):
    from portal.models import InvoiceRun

    values = dict(period_start=date(2026, 6, 1), period_end=date(2026, 6, 30), status="done", started_by="Test")
    values.update(kw)
    session.add(InvoiceRun(**values))
    session.flush()
    return session.scalars(sa.select(InvoiceRun).order_by(InvoiceRun.run_id.desc())).first()


def _run_item(session, outcome):
    from portal.models import InvoiceRunItem

    run = _run(session)
    session.add(InvoiceRunItem(run_id=run.run_id, customer_id=f.make_customer(session).customer_id, outcome=outcome))


def _entry_on_both(session, **kw):
    ticket = f.make_ticket(session)
    project = f.make_project(session)
    f.make_time_entry(session, ticket=ticket, project_id=project.project_id, **kw)


def _entry_on_neither(session):
    customer = f.make_customer(session)
    f.make_time_entry(session, ticket_id=None, project_id=None, customer_id=customer.customer_id)


def _discount_beyond_total(session):
    invoice = f.make_invoice(session)
    f.make_line(session, invoice, unit_price=D("50.00"), line_total=D("50.00"))
    f.make_line(session, invoice, item_type="discount", unit_price=D("80.00"), line_total=D("80.00"))


def _token(session, **kw):
    contact = f.make_contact(session)
    account = Account(email=contact.email, contact_id=contact.contact_id)
    session.add(account)
    session.flush()
    values = dict(account_id=account.account_id, purpose="invitation", token_hash=f"{id(kw):064x}"[:64],
                  created_at=T0, expires_at=T0 + timedelta(hours=24))
    values.update(kw)
    session.add(AuthToken(**values))


def _api_client(session, **kw):
    from portal.models import ApiClient

    values = dict(name=f"Client {f._n()}", client_key=f"tsc_{f._n()}", secret_hash="0" * 64, scopes=["tickets:read"])
    values.update(kw)
    session.add(ApiClient(**values))
    session.flush()


def _api_token(session, **kw):
    from portal.models import ApiClient, ApiToken

    client = ApiClient(name=f"Client {f._n()}", client_key=f"tsc_{f._n()}", secret_hash="0" * 64, scopes=[])
    session.add(client)
    session.flush()
    values = dict(client_id=client.client_id, token_hash=f"{f._n():064d}", scopes=[], issued_at=T0,
                  expires_at=T0 + timedelta(hours=1))
    values.update(kw)
    session.add(ApiToken(**values))
    session.flush()


def _subscription(session, **kw):
    from portal.models import WebhookSubscription

    values = dict(url="https://hooks.example.com/x", event_types=["ticket.created"], secret="whsec_x")
    values.update(kw)
    subscription = WebhookSubscription(**values)
    session.add(subscription)
    session.flush()
    return subscription


def _delivery(session, **kw):
    from portal.models import WebhookDelivery

    values = dict(subscription_id=_subscription(session).subscription_id, event_id=f._n(),
                  event_type="ticket.created", body="{}")
    values.update(kw)
    delivery = WebhookDelivery(**values)
    session.add(delivery)
    session.flush()
    return delivery


def _attempt(session, **kw):
    from portal.models import WebhookAttempt

    values = dict(delivery_id=_delivery(session).delivery_id, attempt_number=1, started_at=T0)
    values.update(kw)
    session.add(WebhookAttempt(**values))
    session.flush()


# (constraint, table, build bad row, build good row)
def _expiry_notice(session, days_before):
    from portal.models import ContractExpiryNotice

    contract = f.make_contract(session)
    session.add(ContractExpiryNotice(contract_id=contract.contract_id, end_date=contract.end_date,
                                     days_before=days_before))
    session.flush()


def _holiday(name):
    from portal.models import Holiday

    return Holiday(day=date(2040, 1, 1) + timedelta(days=f._n()), name=name)


def _inbound(outcome):
    from portal.models import InboundMail

    return InboundMail(message_id=f"<c{f._n()}@example.com>", from_address="a@example.com", subject="s", body="b",
                       outcome=outcome)


CASES = [
    ("chk_health_score", "customers",
     lambda s: f.make_customer(s, account_health_score=D("1.01")),
     lambda s: f.make_customer(s, account_health_score=D("1.00"))),
    ("chk_health_score", "customers",
     lambda s: f.make_customer(s, account_health_score=D("-0.01")),
     lambda s: f.make_customer(s, account_health_score=D("0"))),
    ("chk_email_format", "customers",
     lambda s: f.make_customer(s, primary_contact_email="it@company"),
     lambda s: f.make_customer(s, primary_contact_email="it@company.co")),
    ("chk_email_format", "contacts",
     lambda s: f.make_contact(s, email="jane at company.com"),
     lambda s: f.make_contact(s, email="jane.o'neil+it@company.com".replace("'", ""))),
    ("chk_contract_dates", "service_contracts",
     lambda s: f.make_contract(s, start_date=date(2026, 1, 1), end_date=date(2026, 1, 1)),
     lambda s: f.make_contract(s, start_date=date(2026, 1, 1), end_date=date(2026, 1, 2))),
    ("chk_monthly_fee", "service_contracts",
     lambda s: f.make_contract(s, monthly_fee=D("-0.01")),
     lambda s: f.make_contract(s, monthly_fee=D("0"))),
    ("chk_hourly_rate", "service_contracts",
     lambda s: f.make_contract(s, hourly_rate_additional=D("0")),
     lambda s: f.make_contract(s, hourly_rate_additional=D("0.01"))),
    ("chk_price_increase", "service_contracts",
     lambda s: f.make_contract(s, price_increase_annual=D("50.01")),
     lambda s: f.make_contract(s, price_increase_annual=D("50.00"))),
    ("chk_price_increase", "service_contracts",
     lambda s: f.make_contract(s, price_increase_annual=D("-1")),
     lambda s: f.make_contract(s, price_increase_annual=D("0"))),
    ("chk_rates", "employees",
     lambda s: f.make_employee(s, hourly_rate_internal=D("0")),
     lambda s: f.make_employee(s, hourly_rate_internal=D("0.01"))),
    ("chk_rates", "employees",
     lambda s: f.make_employee(s, hourly_rate_client=D("0")),
     lambda s: f.make_employee(s, hourly_rate_client=D("1"))),
    ("chk_capacity", "employees",
     lambda s: f.make_employee(s, capacity_hours_weekly=D("60.1")),
     lambda s: f.make_employee(s, capacity_hours_weekly=D("60.0"))),
    ("chk_capacity", "employees",
     lambda s: f.make_employee(s, capacity_hours_weekly=D("0")),
     lambda s: f.make_employee(s, capacity_hours_weekly=D("0.5"))),
    ("chk_termination_date", "employees",
     lambda s: f.make_employee(s, hire_date=date(2020, 5, 1), termination_date=date(2020, 4, 30)),
     lambda s: f.make_employee(s, hire_date=date(2020, 5, 1), termination_date=date(2020, 5, 1))),
    ("chk_email_format", "employees",
     lambda s: f.make_employee(s, email="amanda.lee@techserv"),
     lambda s: f.make_employee(s, email=f"amanda.lee{f._n()}@techserv.com")),
    # Errata 3: with the seed's missing parentheses each of these rows would pass.
    *[
        ("chk_ticket_timestamps", "support_tickets",
         (lambda column: lambda s: f.make_ticket(s, created_at=T0, **{column: BEFORE}))(column),
         (lambda column: lambda s: f.make_ticket(s, created_at=T0, **{column: T0}))(column))
        for column in ("assigned_at", "first_response_at", "resolved_at", "closed_at")
    ],
    ("chk_estimated_hours", "support_tickets",
     lambda s: f.make_ticket(s, estimated_hours=D("0")),
     lambda s: f.make_ticket(s, estimated_hours=D("0.25"))),
    ("chk_actual_hours", "support_tickets",
     lambda s: f.make_ticket(s, actual_hours=D("-0.01")),
     lambda s: f.make_ticket(s, actual_hours=D("0"))),
    ("support_tickets_customer_satisfaction_check", "support_tickets",
     lambda s: f.make_ticket(s, customer_satisfaction=0),
     lambda s: f.make_ticket(s, customer_satisfaction=1)),
    ("support_tickets_customer_satisfaction_check", "support_tickets",
     lambda s: f.make_ticket(s, customer_satisfaction=6),
     lambda s: f.make_ticket(s, customer_satisfaction=5)),
    ("chk_project_dates", "projects",
     lambda s: f.make_project(s, start_date=date(2026, 3, 1), planned_end_date=date(2026, 2, 28)),
     lambda s: f.make_project(s, start_date=date(2026, 3, 1), planned_end_date=date(2026, 3, 1))),
    ("chk_actual_end_date", "projects",
     lambda s: f.make_project(s, start_date=date(2026, 3, 1), actual_end_date=date(2026, 2, 28)),
     lambda s: f.make_project(s, start_date=date(2026, 3, 1), actual_end_date=date(2026, 3, 1))),
    ("chk_budget", "projects",
     lambda s: f.make_project(s, budget_amount=D("0")),
     lambda s: f.make_project(s, budget_amount=D("0.01"))),
    ("chk_actual_cost", "projects",
     lambda s: f.make_project(s, actual_cost=D("-0.01")),
     lambda s: f.make_project(s, actual_cost=D("0"))),
    ("chk_completion", "projects",
     lambda s: f.make_project(s, completion_percentage=101),
     lambda s: f.make_project(s, completion_percentage=100)),
    ("chk_completion", "projects",
     lambda s: f.make_project(s, completion_percentage=-1),
     lambda s: f.make_project(s, completion_percentage=0)),
    ("chk_phase_dates", "project_phases",
     lambda s: _phase(s, start_date=date(2026, 2, 2), end_date=date(2026, 2, 1)),
     lambda s: _phase(s, start_date=date(2026, 2, 1), end_date=date(2026, 2, 1))),
    ("chk_phase_budget", "project_phases",
     lambda s: _phase(s, budget_allocation=D("-1")),
     lambda s: _phase(s, budget_allocation=D("0"))),
    ("chk_work_assignment", "time_entries", _entry_on_both, lambda s: f.make_time_entry(s)),
    ("chk_work_assignment", "time_entries", _entry_on_neither,
     lambda s: f.make_time_entry(s, project=f.make_project(s))),
    ("chk_hours_worked", "time_entries",
     lambda s: f.make_time_entry(s, hours_worked=D("0")),
     lambda s: f.make_time_entry(s, hours_worked=D("0.01"))),
    ("chk_hours_worked", "time_entries",
     lambda s: f.make_time_entry(s, hours_worked=D("24.01")),
     lambda s: f.make_time_entry(s, hours_worked=D("24.00"))),
    ("chk_billing_rate", "time_entries",
     lambda s: f.make_time_entry(s, billing_rate=D("-0.01")),
     lambda s: f.make_time_entry(s, billing_rate=D("0"))),
    ("chk_time_range", "time_entries",
     lambda s: f.make_time_entry(s, start_time=time(9, 0), end_time=time(9, 0)),
     lambda s: f.make_time_entry(s, start_time=time(9, 0), end_time=time(9, 1))),
    ("chk_rejection_reason", "time_entries",
     lambda s: f.make_time_entry(s, approval_status="rejected", rejection_reason="  "),
     lambda s: f.make_time_entry(s, approval_status="rejected", rejection_reason="Wrong ticket")),
    ("chk_expiry_stage", "contract_expiry_notices",
     lambda s: _expiry_notice(s, 45),
     lambda s: _expiry_notice(s, 60)),
    ("chk_invoice_amounts", "invoices",
     lambda s: f.make_invoice(s, paid_amount=D("-0.01")),
     lambda s: f.make_invoice(s, paid_amount=D("0"))),
    ("chk_invoice_amounts", "invoices", _discount_beyond_total,
     lambda s: f.make_line(s, f.make_invoice(s), item_type="discount", unit_price=D("0"), line_total=D("0"))),
    ("chk_invoice_dates", "invoices",
     lambda s: f.make_invoice(s, invoice_date=date(2026, 7, 2), due_date=date(2026, 7, 1)),
     lambda s: f.make_invoice(s, invoice_date=date(2026, 7, 1), due_date=date(2026, 7, 1))),
    ("chk_tax_rate", "invoices",
     lambda s: f.make_invoice(s, tax_rate=D("1")),
     lambda s: f.make_invoice(s, tax_rate=D("0.9999"))),
    ("chk_tax_rate", "invoices",
     lambda s: f.make_invoice(s, tax_rate=D("-0.01")),
     lambda s: f.make_invoice(s, tax_rate=D("0"))),
    ("chk_line_amounts", "invoice_line_items",
     lambda s: f.make_line(s, f.make_invoice(s), quantity=D("0"), line_total=D("0")),
     lambda s: f.make_line(s, f.make_invoice(s), quantity=D("0.25"), unit_price=D("100"), line_total=D("25"))),
    ("chk_line_amounts", "invoice_line_items",
     lambda s: f.make_line(s, f.make_invoice(s), unit_price=D("-1"), line_total=D("-1")),
     lambda s: f.make_line(s, f.make_invoice(s), unit_price=D("0"), line_total=D("0"))),
    ("chk_line_amounts", "invoice_line_items",
     lambda s: f.make_line(s, f.make_invoice(s), quantity=D("2"), unit_price=D("10"), line_total=D("21")),
     lambda s: f.make_line(s, f.make_invoice(s), quantity=D("2"), unit_price=D("10"), line_total=D("20"))),
    ("chk_account_owner", "accounts", lambda s: _account(s, owner="both"), lambda s: _account(s)),
    ("chk_account_owner", "accounts", lambda s: _account(s, owner="none"),
     lambda s: _account(s, owner="employee")),
    ("chk_failed_login_count", "accounts", lambda s: _account(s, failed_login_count=-1),
     lambda s: _account(s, failed_login_count=0)),
    ("chk_account_email", "accounts", lambda s: _account(s, email=" padded@example.com"),
     lambda s: _account(s, email="padded@example.com")),
    ("chk_token_purpose", "auth_tokens", lambda s: _token(s, purpose="login"),
     lambda s: _token(s, purpose="password_reset")),
    ("chk_token_expiry", "auth_tokens", lambda s: _token(s, expires_at=T0),
     lambda s: _token(s, expires_at=T0 + timedelta(seconds=1))),
    ("chk_comment_author", "ticket_comments", lambda s: _comment(s, by_contact=True),
     lambda s: _comment(s)),
    ("chk_comment_internal_staff", "ticket_comments",
     lambda s: _comment(s, author_employee_id=None, by_contact=True, is_internal=True),
     lambda s: _comment(s, is_internal=True)),
    ("chk_comment_body", "ticket_comments", lambda s: _comment(s, body="  \n "),
     lambda s: _comment(s, body="ok")),
    ("chk_attachment_size", "ticket_attachments", lambda s: _attachment(s, size_bytes=10 * 1024 * 1024 + 1),
     lambda s: _attachment(s, size_bytes=10 * 1024 * 1024)),
    ("chk_attachment_size", "ticket_attachments", lambda s: _attachment(s, size_bytes=0),
     lambda s: _attachment(s, size_bytes=1)),
    ("chk_attachment_file_name", "ticket_attachments", lambda s: _attachment(s, file_name=" log.txt"),
     lambda s: _attachment(s, file_name="log.txt")),
    ("chk_attachment_uploader", "ticket_attachments", lambda s: _attachment(s, by_both=True),
     lambda s: _attachment(s)),
    ("chk_api_client_name", "api_clients", lambda s: _api_client(s, name=" padded "),
     lambda s: _api_client(s, name=f"n8n {f._n()}")),
    ("chk_api_token_expiry", "api_tokens", lambda s: _api_token(s, expires_at=T0),
     lambda s: _api_token(s, expires_at=T0 + timedelta(seconds=1))),
    ("chk_webhook_url", "webhook_subscriptions", lambda s: _subscription(s, url="ftp://example.com/x"),
     lambda s: _subscription(s, url="https://example.com/x")),
    ("chk_webhook_events", "webhook_subscriptions", lambda s: _subscription(s, event_types=[]),
     lambda s: _subscription(s, event_types=["invoice.paid"])),
    ("chk_webhook_previous_secret", "webhook_subscriptions", lambda s: _subscription(s, previous_secret="whsec_old"),
     lambda s: _subscription(s, previous_secret="whsec_old", previous_secret_expires_at=T0)),
    ("chk_webhook_delivery_status", "webhook_deliveries", lambda s: _delivery(s, status="lost"),
     lambda s: _delivery(s, status="dead")),
    ("chk_webhook_delivery_attempts", "webhook_deliveries", lambda s: _delivery(s, attempts=-1),
     lambda s: _delivery(s, attempts=0)),
    ("chk_webhook_attempt_number", "webhook_attempts", lambda s: _attempt(s, attempt_number=0),
     lambda s: _attempt(s, attempt_number=1)),
    # Billing (issue 11)
    ("chk_invoice_period", "invoices",
     lambda s: f.make_invoice(s, period_start=date(2026, 6, 30), period_end=date(2026, 6, 1)),
     lambda s: f.make_invoice(s, period_start=date(2026, 6, 1), period_end=date(2026, 6, 1))),
    ("chk_line_billing_month", "invoice_line_items",
     lambda s: f.make_line(s, f.make_invoice(s), billing_month=date(2026, 6, 2)),
     lambda s: f.make_line(s, f.make_invoice(s), billing_month=date(2026, 6, 1))),
    ("chk_line_included_hours", "invoice_line_items",
     lambda s: f.make_line(s, f.make_invoice(s), included_hours=D("-0.25")),
     lambda s: f.make_line(s, f.make_invoice(s), included_hours=D("0"))),
    ("chk_payment_amount", "payments", lambda s: _payment(s, amount=D("0")), lambda s: _payment(s, amount=D("0.01"))),
    ("chk_payment_method", "payments", lambda s: _payment(s, method="bitcoin"), lambda s: _payment(s, method="card")),
    ("chk_run_status", "invoice_runs", lambda s: _run(s, status="paused"), lambda s: _run(s, status="done")),
    ("chk_run_period", "invoice_runs", lambda s: _run(s, period_end=date(2026, 5, 31)),
     lambda s: _run(s, period_end=date(2026, 6, 30))),
    ("chk_run_lanes", "invoice_runs", lambda s: _run(s, lanes=0), lambda s: _run(s, lanes=16)),
    ("chk_run_outcome", "invoice_run_items", lambda s: _run_item(s, "maybe"), lambda s: _run_item(s, "nothing")),
    # Migration 0020 (issue 15): business hours, the holiday calendar, mail in.
    ("chk_customer_time_zone", "customers", lambda s: f.make_customer(s, timezone="Mars/Olympus_Mons"),
     lambda s: f.make_customer(s, timezone="Europe/Berlin")),
    ("chk_contract_coverage", "service_contracts",
     lambda s: f.make_contract(s, coverage_days=[1, 2], coverage_start=time(18), coverage_end=time(8)),
     lambda s: f.make_contract(s, coverage_days=[1, 2], coverage_start=time(8), coverage_end=time(18))),
    ("chk_contract_coverage", "service_contracts",
     lambda s: f.make_contract(s, coverage_days=[0], coverage_start=time(8), coverage_end=time(18)),
     lambda s: f.make_contract(s, coverage_days=None, coverage_start=None, coverage_end=None)),
    ("chk_holiday_name", "holidays", lambda s: s.add(_holiday(" ")), lambda s: s.add(_holiday("New Year"))),
    ("chk_inbound_outcome", "inbound_mails", lambda s: s.add(_inbound("lost")), lambda s: s.add(_inbound("ignored"))),
]


def _violated_constraint(session, build) -> str | None:
    nested = session.begin_nested()
    try:
        build(session)
        session.flush()
    except sa.exc.IntegrityError as exc:
        nested.rollback()
        return exc.orig.diag.constraint_name
    nested.rollback()
    return None


@pytest.mark.parametrize(
    "constraint, table, bad, good", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_check_rejects_bad_row_and_accepts_good_one(session, constraint, table, bad, good):
    assert _violated_constraint(session, bad) == constraint
    assert _violated_constraint(session, good) is None


def test_every_check_constraint_has_a_case(session):
    """A CHECK added without a test here fails this test."""
    in_database = set(session.execute(sa.text("""
        SELECT rel.relname, con.conname FROM pg_constraint con
        JOIN pg_class rel ON rel.oid = con.conrelid
        JOIN pg_namespace ns ON ns.oid = rel.relnamespace
        WHERE con.contype = 'c' AND ns.nspname = current_schema()
          AND rel.relname NOT LIKE 'procrastinate\\_%'
    """)).all())
    tested = {(table, constraint) for constraint, table, _, _ in CASES}
    assert in_database == tested


@pytest.mark.parametrize("constraint, build_twice", [
    ("api_clients_name_key", lambda s: [_api_client(s, name="Same name") for _ in range(2)]),
    ("uq_webhook_delivery_event", lambda s: (lambda d: _delivery(s, subscription_id=d.subscription_id,
                                                                  event_id=d.event_id))(_delivery(s))),
    ("uq_webhook_attempt_number", lambda s: (lambda d: [_attempt_on(s, d) for _ in range(2)])(_delivery(s))),
])
def test_the_api_and_webhook_unique_keys_refuse_a_second_row_with_their_sentence(session, constraint, build_twice):
    """Migration 0013's unique keys: the second row is refused, and the user reads a sentence, not a 500."""
    from portal.services.integrity import domain_error_for

    nested = session.begin_nested()
    with pytest.raises(sa.exc.IntegrityError) as refused:
        build_twice(session)
        session.flush()
    nested.rollback()
    assert refused.value.orig.diag.constraint_name == constraint
    error = domain_error_for(refused.value)
    assert error is not None and "constraint" not in error.message and error.status == 409


def _attempt_on(session, delivery):
    from portal.models import WebhookAttempt

    session.add(WebhookAttempt(delivery_id=delivery.delivery_id, attempt_number=1, started_at=T0))
    session.flush()


def test_two_employees_cannot_share_an_email_in_any_case(session):
    """idx_employees_email_lower (migration 0014): logins match emails case-insensitively."""
    from portal.services.errors import Conflict
    from portal.services.integrity import integrity_as_domain_errors

    first = f.make_employee(session, email=f"Dana.Reyes{f._n()}@techserv.com")
    assert _violated_constraint(session, lambda s: f.make_employee(s, email=first.email.lower())) \
        == "idx_employees_email_lower"
    assert _violated_constraint(session, lambda s: f.make_employee(s, email="x" + first.email.lower())) is None
    with pytest.raises(Conflict) as caught:
        with integrity_as_domain_errors(session):
            f.make_employee(session, email=first.email.upper())
    assert (caught.value.field, caught.value.message) == ("email", "Another employee already uses this email address.")
