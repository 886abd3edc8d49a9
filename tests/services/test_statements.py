"""A customer's invoices: never drafts, never another customer's, what is outstanding, pages and filters."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import Account
from portal.services import auth
from portal.services.errors import Forbidden, NotFound
from portal.services.statements import (
    PER_PAGE,
    customer_invoice,
    customer_invoices,
    invoice_totals,
    outstanding_amount,
    page_number,
    status_filter,
)
from tests import factories as f

TODAY = date(2026, 8, 15)


def principal(session, person):
    account = session.scalar(sa.select(Account).where(Account.email == person.email))
    return auth.principal_for(session, account.account_id)


def invoice(session, customer, status="sent", total="100.00", paid="0", day=date(2026, 7, 1), **kw):
    """An invoice of `customer` with one expense line of `total` (the triggers derive the totals)."""
    made = f.make_invoice(session, customer=customer, invoice_status=status, paid_amount=D(paid),
                          invoice_date=day, due_date=day + timedelta(days=30), **kw)
    f.make_line(session, made, unit_price=D(total), line_total=D(total), description=f"Work for {made.invoice_number}")
    session.refresh(made)
    return made


@pytest.fixture
def billing(session):
    customer = f.make_customer(session)
    contact = f.make_contact_login(session, customer=customer, is_billing_contact=True, can_create_tickets=False)
    return customer, principal(session, contact)


def test_drafts_are_never_listed_nor_counted(session, billing):
    customer, who = billing
    invoice(session, customer, status="draft", total="999.00")
    sent = invoice(session, customer, status="sent", total="100.00")
    page = customer_invoices(session, who, today=TODAY)
    assert [row.invoice.invoice_id for row in page.rows] == [sent.invoice_id]
    assert page.total == 1 and page.summary.outstanding == D("100.00") and page.summary.due_count == 1


def test_a_draft_opened_by_id_is_not_found(session, billing):
    customer, who = billing
    draft = invoice(session, customer, status="draft")
    with pytest.raises(NotFound):
        customer_invoice(session, who, draft.invoice_id)


def test_another_customers_invoice_is_neither_listed_nor_found(session, billing):
    customer, who = billing
    theirs = invoice(session, f.make_customer(session), status="overdue", total="500.00")
    assert customer_invoices(session, who, today=TODAY).rows == []
    assert customer_invoices(session, who, today=TODAY).summary.outstanding == 0
    with pytest.raises(NotFound):
        customer_invoice(session, who, theirs.invoice_id)
    with pytest.raises(NotFound):
        customer_invoice(session, who, 2_000_000_000)


def test_only_billing_and_primary_contacts_see_invoices(session):
    customer = f.make_customer(session)
    primary = principal(session, f.make_contact_login(session, customer=customer, is_primary_contact=True))
    plain = principal(session, f.make_contact_login(session, customer=customer))
    sponsor = principal(session, f.make_contact_login(session, customer=customer, can_approve_projects=True))
    admin = principal(session, f.make_staff(session, role="admin"))
    mine = invoice(session, customer)
    assert customer_invoice(session, primary, mine.invoice_id).invoice.invoice_id == mine.invoice_id
    for who in (plain, sponsor, admin):
        with pytest.raises(Forbidden):
            customer_invoices(session, who)
        with pytest.raises(Forbidden):
            customer_invoice(session, who, mine.invoice_id)


def test_outstanding_is_the_unpaid_rest_of_sent_and_overdue_invoices_only(session, billing):
    customer, who = billing
    sent = invoice(session, customer, status="sent", total="300.00", paid="100.00", day=date(2026, 7, 1))
    overdue = invoice(session, customer, status="overdue", total="250.00", paid="50.00", day=date(2026, 6, 1))
    paid = invoice(session, customer, status="paid", total="400.00", paid="390.00", day=date(2026, 5, 1))
    cancelled = invoice(session, customer, status="cancelled", total="80.00", day=date(2026, 4, 1))
    over_paid = invoice(session, customer, status="sent", total="10.00", paid="15.00", day=date(2026, 3, 1))
    assert outstanding_amount(sent) == D("200.00") and outstanding_amount(overdue) == D("200.00")
    assert outstanding_amount(paid) == 0 and outstanding_amount(cancelled) == 0 and outstanding_amount(over_paid) == 0

    page = customer_invoices(session, who, today=TODAY)
    assert page.summary.outstanding == D("400.00")  # 200 + 200, nothing from paid, cancelled or over-paid
    assert page.summary.due_count == 3 and page.summary.overdue == D("200.00") and page.summary.overdue_count == 1
    by_id = {row.invoice.invoice_id: row for row in page.rows}
    assert by_id[sent.invoice_id].outstanding == D("200.00") and by_id[paid.invoice_id].outstanding == 0
    assert by_id[overdue.invoice_id].days_overdue == (TODAY - overdue.due_date).days
    # A sent invoice past its due date is late by the calendar even before the daily scan marks it.
    assert by_id[sent.invoice_id].days_overdue == (TODAY - sent.due_date).days > 0
    assert by_id[sent.invoice_id].status_label == "Awaiting payment"
    assert customer_invoices(session, who, today=sent.due_date).rows[0].days_overdue is None  # due today: not late
    assert by_id[overdue.invoice_id].status_label == "Overdue"
    assert by_id[sent.invoice_id].status_label == "Awaiting payment"


def test_newest_first_and_paginated(session, billing):
    customer, who = billing
    made = [invoice(session, customer, status="paid", total="10.00", paid="10.00",
                    day=date(2024, 1, 1) + timedelta(days=n)) for n in range(PER_PAGE + 3)]
    first = customer_invoices(session, who, page=1, today=TODAY)
    assert first.total == PER_PAGE + 3 and first.pages == 2 and len(first.rows) == PER_PAGE
    assert first.rows[0].invoice.invoice_id == made[-1].invoice_id
    dates = [row.invoice.invoice_date for row in first.rows]
    assert dates == sorted(dates, reverse=True)
    second = customer_invoices(session, who, page=2, today=TODAY)
    assert [row.invoice.invoice_id for row in second.rows] == [m.invoice_id for m in made[2::-1]]
    beyond = customer_invoices(session, who, page=99, today=TODAY)
    assert beyond.page == 2 and len(beyond.rows) == 3


@pytest.mark.parametrize("status, expected", [
    ("", {"sent", "overdue", "paid", "cancelled"}),
    ("due", {"sent", "overdue"}),
    ("sent", {"sent"}),
    ("overdue", {"overdue"}),
    ("paid", {"paid"}),
    ("cancelled", {"cancelled"}),
    ("draft", {"sent", "overdue", "paid", "cancelled"}),  # not a filter a customer has: all
    ("nonsense", {"sent", "overdue", "paid", "cancelled"}),
])
def test_the_status_filter(session, billing, status, expected):
    customer, who = billing
    for state in ("draft", "sent", "overdue", "paid", "cancelled"):
        invoice(session, customer, status=state, paid="100.00" if state == "paid" else "0")
    page = customer_invoices(session, who, status=status, today=TODAY)
    assert {row.invoice.invoice_status.value for row in page.rows} == expected
    assert page.total == len(expected)
    # The summary is the customer's whole account, whatever the filter shows.
    assert page.summary.due_count == 2 and page.summary.outstanding == D("200.00")


def test_filters_and_pages_from_the_url_never_fail():
    assert status_filter(" DUE ") == "due" and status_filter(None) == "" and status_filter("draft") == ""
    assert page_number("3") == 3 and page_number("0") == 1 and page_number("-2") == 1
    assert page_number("x") == 1 and page_number(None) == 1 and page_number("9" * 40) == 10_000


def test_one_invoice_with_its_lines_and_totals(session, billing):
    customer, who = billing
    made = f.make_invoice(session, customer=customer, invoice_status="sent", tax_rate=D("0.0825"),
                          paid_amount=D("100.00"))
    f.make_line(session, made, description="Monthly fee", item_type="monthly_fee", unit_price=D("1200.00"),
                line_total=D("1200.00"))
    f.make_line(session, made, description="Printer repair", item_type="hourly_work", quantity=D("2.50"),
                unit_price=D("100.00"), line_total=D("250.00"))
    f.make_line(session, made, description="Loyalty discount", item_type="discount", unit_price=D("300.00"),
                line_total=D("300.00"))
    session.refresh(made)
    statement = customer_invoice(session, who, made.invoice_id)
    assert [line.description for line in statement.lines] == ["Monthly fee", "Printer repair", "Loyalty discount"]
    totals = statement.totals
    assert totals.charges == D("1450.00") and totals.discount == D("300.00") and totals.subtotal == D("1150.00")
    assert totals.tax_percent == "8.25 %" and totals.tax_amount == D("94.88") and totals.total == D("1244.88")
    assert totals.paid == D("100.00") and totals.outstanding == D("1144.88")
    assert statement.line_labels[statement.lines[2].item_type] == "Discount"
    assert invoice_totals(made, []).charges == 0


def test_money_in_messages_has_its_currency():
    from decimal import Decimal

    from portal.services.money import format_money

    assert format_money(Decimal("18000")) == "$18,000.00"
    assert format_money(Decimal("-40")) == "-$40.00"
    assert format_money("0.005") == "$0.01"
