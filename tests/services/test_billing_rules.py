"""The billing rules of issue 11 (services/invoicing.py), each with its exact amounts, on the real database;
and the three faults the issue's audit found, reproduced on the demo data."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal as D

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from portal.models import Customer, Employee, InvoiceLineItem, LineItemType, ServiceContract
from portal.services import auth
from portal.services.errors import Conflict, Invalid
from portal.services.invoicing import (
    InvoiceRequest,
    generate_invoice,
    month_allowance,
    month_fee,
    plan_invoice,
    tax_on,
)
from portal.services.policy import Principal
from portal.services.seed import load_demo_data
from portal.services.usage import contract_usage
from tests import factories as f

SYSTEM = Principal.system("test")
DEMO_TODAY = date(2026, 11, 20)  # the demo as the audit saw it: November under way, Denver's draft made


class Shop:
    """A customer with a contract (10 h a month included, $150 an extra hour, $1,000 a month) and its work."""

    def __init__(self, session, *, contract=True, included=10, fee="1000.00", start=date(2026, 1, 1),
                 end=date(2026, 12, 31)):
        self.s = session
        self.customer = f.make_customer(session)
        self.contract = (f.make_contract(session, customer=self.customer, included_hours=included,
                                         hourly_rate_additional=D("150.00"), monthly_fee=D(fee),
                                         start_date=start, end_date=end) if contract else None)
        self.tech = f.make_employee(session)
        self.ticket = f.make_ticket(session, customer=self.customer)
        self.project = f.make_project(session, customer=self.customer)

    def entry(self, day, hours, *, ticket=None, project=None, rate="100.00", **kw):
        work = {"project": project} if project is not None else {"ticket": ticket or self.ticket}
        return f.make_time_entry(self.s, employee=self.tech, work_date=day, hours_worked=D(hours),
                                 approval_status=kw.pop("status", "approved"), billing_rate=D(rate), **work, **kw)

    def request(self, start, end, fees=True):
        return InvoiceRequest(self.customer.customer_id, start, end, include_monthly_fees=fees)

    def invoice(self, start, end, *, fees=True, tax="0"):
        return generate_invoice(self.s, SYSTEM, self.request(start, end, fees), invoice_date=end,
                                tax_rate=D(tax))


def lines(invoice):
    return [(line.item_type.value, line.quantity, line.unit_price, line.line_total, line.included_hours)
            for line in invoice.line_items]


# --- included hours, overage, project work, no contract ------------------------------------------

def test_included_hours_within_one_invoice_then_overage(session):
    shop = Shop(session)
    shop.entry(date(2026, 6, 2), "4.00")
    shop.entry(date(2026, 6, 3), "5.00")
    shop.entry(date(2026, 6, 4), "3.00")  # 1 h left of 10: 1 included, 2 h at 150
    invoice = shop.invoice(date(2026, 6, 1), date(2026, 6, 30))
    assert lines(invoice) == [
        ("monthly_fee", D("1.00"), D("1000.00"), D("1000.00"), D("0.00")),
        ("hourly_work", D("4.00"), D("0.00"), D("0.00"), D("4.00")),
        ("hourly_work", D("5.00"), D("0.00"), D("0.00"), D("5.00")),
        ("hourly_work", D("2.00"), D("150.00"), D("300.00"), D("1.00")),
    ]
    assert (invoice.subtotal, invoice.total_amount) == (D("1300.00"), D("1300.00"))
    assert (invoice.period_start, invoice.period_end) == (date(2026, 6, 1), date(2026, 6, 30))


def test_included_hours_are_used_once_across_the_invoices_of_a_month(session):
    shop = Shop(session)
    shop.entry(date(2026, 6, 2), "8.00")
    first = shop.invoice(date(2026, 6, 1), date(2026, 6, 10))
    shop.entry(date(2026, 6, 15), "4.00")  # 2 h left of the month's 10: 2 included, 2 h at 150
    second = shop.invoice(date(2026, 6, 11), date(2026, 6, 30))
    assert [row[:4] for row in lines(first)] == [("monthly_fee", D("1.00"), D("1000.00"), D("1000.00")),
                                                 ("hourly_work", D("8.00"), D("0.00"), D("0.00"))]
    assert lines(second) == [("hourly_work", D("2.00"), D("150.00"), D("300.00"), D("2.00"))]
    assert second.total_amount == D("300.00")  # the June fee is on the first one already


def test_project_work_and_work_without_a_contract_bill_at_the_entrys_rate(session):
    shop = Shop(session)
    shop.entry(date(2026, 6, 2), "2.50", project=shop.project, rate="175.00")
    bare = Shop(session, contract=False)
    bare.entry(date(2026, 6, 2), "1.25", rate="110.00")
    assert lines(shop.invoice(date(2026, 6, 1), date(2026, 6, 30), fees=False)) == [
        ("hourly_work", D("2.50"), D("175.00"), D("437.50"), D("0.00"))]
    assert lines(bare.invoice(date(2026, 6, 1), date(2026, 6, 30))) == [
        ("hourly_work", D("1.25"), D("110.00"), D("137.50"), D("0.00"))]


def test_tax_is_rounded_half_up(session):
    shop = Shop(session, contract=False)
    shop.entry(date(2026, 6, 2), "0.50", rate="1.00")  # 0.50 at 25 %: 0.125 -> 0.13 (half up, not to even)
    invoice = shop.invoice(date(2026, 6, 1), date(2026, 6, 30), tax="0.25")
    assert (invoice.subtotal, invoice.tax_amount, invoice.total_amount) == (D("0.50"), D("0.13"), D("0.63"))
    assert tax_on(D("0.50"), D("0.25")) == D("0.13") and tax_on(D("10.05"), D("0.05")) == D("0.50")


# --- proration and the contract of the work date -----------------------------------------------

def test_a_contract_starting_mid_month_prorates_fee_and_allowance(session):
    shop = Shop(session, included=20, fee="1273.08", start=date(2026, 6, 11))
    assert month_allowance(shop.contract, date(2026, 6, 1)) == D("13.25")  # 20 h x 20/30 = 13.33 -> 13.25
    assert month_fee(shop.contract, date(2026, 6, 1)) == D("848.72")  # 1273.08 x 20/30
    assert month_allowance(shop.contract, date(2026, 7, 1)) == D("20")
    shop.entry(date(2026, 6, 12), "14.00")
    invoice = shop.invoice(date(2026, 6, 1), date(2026, 6, 30))
    assert lines(invoice) == [
        ("monthly_fee", D("1.00"), D("848.72"), D("848.72"), D("0.00")),
        ("hourly_work", D("0.75"), D("150.00"), D("112.50"), D("13.25")),
    ]
    assert "20 of 30 days" in invoice.line_items[0].description


def test_the_contract_in_force_on_the_work_date_prices_the_entry(session):
    shop = Shop(session, included=0, start=date(2026, 6, 15))
    old = f.make_contract(session, customer=shop.customer, included_hours=10, hourly_rate_additional=D("90.00"),
                          monthly_fee=D("0.00"), start_date=date(2025, 6, 15), end_date=date(2026, 6, 14),
                          contract_status="expired")
    ticket = f.make_ticket(session, customer=shop.customer, contract_id=old.contract_id)  # opened under the old one
    shop.entry(date(2026, 6, 20), "2.00", ticket=ticket)
    for start in (date(2026, 6, 1), date(2026, 6, 15)):
        plan = plan_invoice(session, SYSTEM, shop.request(start, date(2026, 6, 30), fees=False), tax_rate=D(0))
        assert [(line.quantity, line.unit_price, line.contract_id) for line in plan.lines] == [
            (D("2.00"), D("150.00"), shop.contract.contract_id)]


# --- held by the database: fee months, entries, cancel ----------------------------------------------

def test_a_fee_month_is_billed_once(session, savepoint):
    shop = Shop(session)
    first = shop.invoice(date(2026, 6, 1), date(2026, 6, 15))
    assert [line.item_type for line in first.line_items] == [LineItemType.MONTHLY_FEE]
    with pytest.raises(Invalid):
        shop.invoice(date(2026, 6, 1), date(2026, 6, 30))  # the fee is billed: nothing else to bill
    # The database refuses a second live fee line for the month whoever writes it.
    other = f.make_invoice(session, customer=shop.customer)
    error = savepoint.fails(sa.insert(InvoiceLineItem).values(
        invoice_id=other.invoice_id, item_type="monthly_fee", description="Again", quantity=1, unit_price=1000,
        line_total=1000, contract_id=shop.contract.contract_id, billing_month=date(2026, 6, 1)))
    assert error is not None and error.orig.diag.constraint_name == "idx_line_items_fee_month"


def test_cancel_frees_entries_and_fee_months_then_they_are_billed_again(session):
    shop = Shop(session)
    entry = shop.entry(date(2026, 6, 2), "12.00")
    first = shop.invoice(date(2026, 6, 1), date(2026, 6, 30))
    assert first.total_amount == D("1300.00")
    first.invoice_status = "cancelled"
    session.flush()
    again = shop.invoice(date(2026, 6, 1), date(2026, 6, 30))
    assert again.total_amount == D("1300.00")  # the same fee and the same allowance, as if the first never was
    session.refresh(first)
    assert [line.live for line in first.line_items] == [False, False]  # the lines stay, for the record
    assert {line.time_entry_id for line in again.line_items} == {None, entry.entry_id}


def test_the_preview_is_exactly_the_draft(session):
    shop = Shop(session)
    shop.entry(date(2026, 6, 2), "11.00")
    shop.entry(date(2026, 6, 3), "1.00", project=shop.project)
    plan = plan_invoice(session, SYSTEM, shop.request(date(2026, 6, 1), date(2026, 6, 30)), tax_rate=D("0.0825"))
    invoice = generate_invoice(session, SYSTEM, shop.request(date(2026, 6, 1), date(2026, 6, 30)),
                               invoice_date=date(2026, 7, 1), tax_rate=D("0.0825"),
                               expected_fingerprint=plan.fingerprint)
    assert [(line.description, line.quantity, line.unit_price, line.line_total) for line in invoice.line_items] == [
        (line.description, line.quantity, line.unit_price, line.line_total) for line in plan.lines]
    assert (invoice.subtotal, invoice.tax_amount, invoice.total_amount) == (plan.subtotal, plan.tax_amount, plan.total)


def test_generating_after_the_work_changed_refuses_the_old_preview(session):
    shop = Shop(session)
    shop.entry(date(2026, 6, 2), "1.00")
    plan = plan_invoice(session, SYSTEM, shop.request(date(2026, 6, 1), date(2026, 6, 30)), tax_rate=D(0))
    shop.entry(date(2026, 6, 3), "1.00")
    with pytest.raises(Conflict):
        generate_invoice(session, SYSTEM, shop.request(date(2026, 6, 1), date(2026, 6, 30)),
                         invoice_date=date(2026, 7, 1), tax_rate=D(0), expected_fingerprint=plan.fingerprint)


def test_a_period_longer_than_a_year_or_reversed_is_refused(session):
    shop = Shop(session)
    with pytest.raises(Invalid) as caught:
        shop.invoice(date(2026, 6, 30), date(2026, 6, 1))
    assert caught.value.field == "billing_period_end"
    with pytest.raises(Invalid):
        shop.invoice(date(2025, 1, 1), date(2026, 6, 1))


# --- the three faults, on the demo data -----------------------------------------------------

# The demo's contracts as the issue names them (numbers come from a sequence that other tests move on).
DEMO_CONTRACTS = {"CON-2026-015": ("Alpine Legal Group", date(2026, 1, 1)),
                  "CON-2026-007": ("Denver Tech Solutions", date(2026, 1, 1)),
                  "CON-2025-010": ("Boulder Manufacturing Co", date(2025, 1, 15)),
                  "CON-2026-011": ("Boulder Manufacturing Co", date(2026, 1, 15))}


def _demo(session):
    load_demo_data(session, password="correct horse battery", tax_rate=D("0"), today=DEMO_TODAY)
    return {number: session.scalar(sa.select(ServiceContract).join(Customer).where(
        Customer.company_name == name, ServiceContract.start_date == start))
        for number, (name, start) in DEMO_CONTRACTS.items()}


def _customer(session, name):
    return session.scalar(sa.select(Customer).where(Customer.company_name == name))


def _fee_lines(session, contract, month):
    return session.scalar(sa.select(sa.func.count()).select_from(InvoiceLineItem).where(
        InvoiceLineItem.live, InvoiceLineItem.item_type == LineItemType.MONTHLY_FEE,
        InvoiceLineItem.contract_id == contract.contract_id, InvoiceLineItem.billing_month == month))


def test_denver_month_end_after_the_demo_draft_bills_the_fee_once(session):
    contracts = _demo(session)
    denver = _customer(session, "Denver Tech Solutions")
    november = date(2026, 11, 1)
    assert _fee_lines(session, contracts["CON-2026-007"], november) == 1  # on the demo's draft
    plan = plan_invoice(session, SYSTEM, InvoiceRequest(denver.customer_id, november, date(2026, 11, 30)),
                        tax_rate=D(0))
    assert plan.skipped_fee_months == [(contracts["CON-2026-007"].contract_number, november)]
    assert all(line.item_type != LineItemType.MONTHLY_FEE for line in plan.lines)
    try:
        generate_invoice(session, SYSTEM, InvoiceRequest(denver.customer_id, november, date(2026, 11, 30)),
                         invoice_date=date(2026, 12, 1), tax_rate=D(0))
    except Invalid:
        pass  # nothing else to bill is as right as an invoice of the rest
    assert _fee_lines(session, contracts["CON-2026-007"], november) == 1


def test_boulder_january_renewal_prices_the_same_whatever_the_period(session):
    contracts = _demo(session)
    old, new = contracts["CON-2025-010"], contracts["CON-2026-011"]
    boulder = _customer(session, "Boulder Manufacturing Co")
    tech = session.scalar(sa.select(Employee).where(Employee.employee_number == "EMP001"))
    old_ticket = f.make_ticket(session, customer=boulder, contract_id=old.contract_id, title="Opened on 10 Jan")
    new_ticket = f.make_ticket(session, customer=boulder, contract_id=new.contract_id, title="Plant network")
    for day in range(15, 20):
        f.make_time_entry(session, employee=tech, ticket=new_ticket, work_date=date(2026, 1, day),
                          hours_worked=D("10.00"), approval_status="approved", billing_rate=D("125.00"))
    six = f.make_time_entry(session, employee=tech, ticket=old_ticket, work_date=date(2026, 1, 20),
                            hours_worked=D("6.00"), approval_status="approved", billing_rate=D("125.00"))
    assert month_allowance(new, date(2026, 1, 1)) == D("27.5")  # 50 h x 17/31 = 27.42 -> 27.5
    assert month_allowance(old, date(2026, 1, 1)) == D("22.5")  # 50 h x 14/31 = 22.58 -> 22.5

    def six_hours(start):
        plan = plan_invoice(session, SYSTEM, InvoiceRequest(boulder.customer_id, start, date(2026, 1, 31)),
                            tax_rate=D(0))
        return plan, next(line for line in plan.lines if line.time_entry_id == six.entry_id)

    whole, line_whole = six_hours(date(2026, 1, 1))
    half, line_half = six_hours(date(2026, 1, 15))
    assert (line_whole.quantity * line_whole.unit_price) == (line_half.quantity * line_half.unit_price) == D("750.00")
    fees = lambda plan: [(line.contract_id, line.unit_price) for line in plan.lines  # noqa: E731
                         if line.item_type == LineItemType.MONTHLY_FEE]
    assert fees(whole) == [(old.contract_id, D("1162.90")), (new.contract_id, D("1454.46"))]
    assert fees(half) == [(new.contract_id, D("1454.46"))]
    hours = [line for line in whole.lines if line.time_entry_id]
    assert sum((line.included_hours for line in hours), D(0)) == D("27.5")
    assert sum((line.line_total for line in hours), D(0)) == D("3562.50")  # 28.5 h over at 125
    # The usage page counts the 56 h worked under the contract in force on their days.
    sponsor = f.make_contact_login(session, customer=boulder, is_primary_contact=True)
    account_id = session.scalar(sa.text("SELECT account_id FROM accounts WHERE contact_id = :c"),
                                {"c": sponsor.contact_id})
    usage = contract_usage(session, auth.principal_for(session, account_id), today=DEMO_TODAY, month="2026-01")
    assert usage.contract.contract_id == new.contract_id
    assert (usage.approved, usage.included, usage.over) == (D("56.00"), D("27.5"), D("28.50"))
    assert usage.estimate == D("3562.50")


def test_eight_concurrent_generations_for_alpine_bill_every_entry_and_fee_once(pg, app):
    """The issue's first fault: eight generations at once for Alpine Legal Group, November, each on its
    own connection, made eight invoices with the fee. Now one invoice bills it; the rest find nothing."""
    name = pg.create_database("techserv_eight")
    try:
        from tests.test_migrations import migrate_database

        migrate_database(pg, name)
        engine = sa.create_engine(pg.url_for(name), pool_size=10)
        Session = orm.sessionmaker(engine)
        with Session.begin() as setup:
            load_demo_data(setup, password="correct horse battery", tax_rate=D("0.0825"), today=DEMO_TODAY)
            alpine = _customer(setup, "Alpine Legal Group").customer_id
            # November's work, approved, not billed yet (the demo bills months gone by only).
            for day in (2, 3, 9, 16):
                ticket = f.make_ticket(setup, customer=setup.get(Customer, alpine))
                f.make_time_entry(setup, ticket=ticket, work_date=date(2026, 11, day), hours_worked=D("7.00"),
                                  approval_status="approved", billing_rate=D("125.00"))
        request = InvoiceRequest(alpine, date(2026, 11, 1), date(2026, 11, 30))
        barrier = threading.Barrier(8)
        outcomes: list[str] = []

        def generate() -> None:
            with Session() as s:
                barrier.wait()
                try:
                    invoice = generate_invoice(s, SYSTEM, request, invoice_date=date(2026, 12, 1),
                                               tax_rate=D("0.0825"))
                    s.commit()
                    outcomes.append(invoice.invoice_number)
                except Invalid as error:
                    s.rollback()
                    outcomes.append(error.message)

        threads = [threading.Thread(target=generate) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        made = [o for o in outcomes if o.startswith("INV-")]
        assert len(outcomes) == 8 and len(made) == 1, outcomes
        with psycopg.connect(pg.libpq_url_for(name)) as conn:
            fee_lines, entry_lines, distinct_entries = conn.execute("""
                SELECT count(*) FILTER (WHERE l.item_type = 'monthly_fee'),
                       count(l.time_entry_id), count(DISTINCT l.time_entry_id)
                  FROM invoice_line_items l JOIN invoices i USING (invoice_id)
                 WHERE i.customer_id = %s AND l.live AND l.billing_month = '2026-11-01'""", (alpine,)).fetchone()
            unbilled = conn.execute("""
                SELECT count(*) FROM time_entries t WHERE t.customer_id = %s AND t.approval_status = 'approved'
                   AND t.is_billable AND t.work_date BETWEEN '2026-11-01' AND '2026-11-30'
                   AND NOT EXISTS (SELECT 1 FROM invoice_line_items l WHERE l.time_entry_id = t.entry_id AND l.live)
            """, (alpine,)).fetchone()[0]
            # An independent sum: the invoice's total from its lines, tax half up.
            total, independent = conn.execute("""
                SELECT i.total_amount,
                       round(sum(CASE WHEN l.item_type = 'discount' THEN -l.line_total ELSE l.line_total END)
                             * (1 + i.tax_rate), 2)
                  FROM invoices i JOIN invoice_line_items l USING (invoice_id)
                 WHERE i.invoice_number = %s GROUP BY i.invoice_id""", (made[0],)).fetchone()
        assert (fee_lines, unbilled) == (1, 0)
        assert entry_lines == distinct_entries >= 4
        assert total == independent
        engine.dispose()
    finally:
        pg.drop_database(name)


def test_month_end_on_the_demo_agrees_with_an_independent_sum(session):
    """The issue's "done when": November billed for every customer of the demo by the month-end run
    (its four lanes), then checked by SQL that shares no code with the rules: every approved billable
    entry of the month on exactly one live line, every contract's November fee once, and every
    invoice's total equal to its lines' sum with tax half up."""
    from portal.services import invoice_runs

    _demo(session)
    run, started = invoice_runs.start_run(session, SYSTEM, date(2026, 11, 1))
    assert started
    for lane in range(run.lanes):
        while invoice_runs.run_step(session, run.run_id, lane=lane, tax_rate=D("0.0825")):
            pass
    session.refresh(run)
    assert run.status == "done" and run.failed == 0 and run.made + run.nothing == run.processed == 5
    unbilled, doubly = session.execute(sa.text("""
        SELECT count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n > 1) FROM (
          SELECT (SELECT count(*) FROM invoice_line_items l WHERE l.time_entry_id = t.entry_id AND l.live) AS n
            FROM time_entries t WHERE t.approval_status = 'approved' AND t.is_billable
             AND t.work_date BETWEEN '2026-11-01' AND '2026-11-30') e""")).one()
    fees = session.execute(sa.text("""
        SELECT k.contract_number, count(l.*) FROM service_contracts k
          LEFT JOIN invoice_line_items l ON l.contract_id = k.contract_id AND l.item_type = 'monthly_fee'
                                        AND l.live AND l.billing_month = '2026-11-01'
         WHERE k.contract_status = 'active' GROUP BY k.contract_number""")).all()
    wrong = session.execute(sa.text("""
        SELECT i.invoice_number FROM invoices i
          JOIN (SELECT invoice_id, sum(CASE WHEN item_type = 'discount' THEN -round(quantity * unit_price, 2)
                                            ELSE round(quantity * unit_price, 2) END) AS lines
                  FROM invoice_line_items GROUP BY invoice_id) s USING (invoice_id)
         WHERE i.total_amount <> s.lines + round(s.lines * i.tax_rate, 2)""")).scalars().all()
    assert (unbilled, doubly) == (0, 0)
    assert fees and all(count == 1 for _, count in fees), fees
    assert wrong == []
