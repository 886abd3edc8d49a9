"""The staff's invoice pages (issue 11): preview then draft, edit, send, payments, cancel, delete, the
month-end run through the worker, the accountant's export, and a fixed number of statements per page."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import AuditEvent, Invoice, InvoiceDocument, InvoiceRun, InvoiceStatus, Payment
from portal.services import clock
from tests import factories as f
from tests.conftest import count_queries

LAST_MONTH_END = clock.today().replace(day=1) - timedelta(days=1)
LAST_MONTH = LAST_MONTH_END.replace(day=1)


@pytest.fixture
def manager(session, browser):
    person = f.make_staff(session, role="account_manager")
    browser.sign_in(person.email)
    return person


class Customer:
    """A customer with a contract (10 h, $1,000 a month, $150 an extra hour), a billing contact, and 12 h
    of approved support work last month: its invoice is $1,000 + 2 h x $150 = $1,300."""

    def __init__(self, session, name="Pine Street Dental"):
        self.row = f.make_customer(session, company_name=name) if name else f.make_customer(session)
        self.contract = f.make_contract(session, customer=self.row, included_hours=10, monthly_fee=D("1000.00"),
                                        hourly_rate_additional=D("150.00"), start_date=date(2020, 1, 1),
                                        end_date=date(2030, 12, 31))
        self.billing = f.make_contact_login(session, customer=self.row, is_billing_contact=True,
                                            email=f"pay{self.row.customer_id}@pinestreet.example")
        ticket = f.make_ticket(session, customer=self.row)
        self.entries = [f.make_time_entry(session, ticket=ticket, work_date=LAST_MONTH + timedelta(days=d),
                                          hours_worked=D("6.00"), approval_status="approved") for d in (1, 2)]

    @property
    def id(self):
        return self.row.customer_id


def _preview(browser, customer):
    return browser.get(f"/staff/invoices/new?customer_id={customer.id}&period_start={LAST_MONTH}"
                       f"&period_end={LAST_MONTH_END}&include_monthly_fees=1")


def _generate(browser, session, customer) -> Invoice:
    page = _preview(browser, customer).get_data(as_text=True)
    fingerprint = page.split('name="fingerprint" value="')[1].split('"')[0]
    response = browser.post("/staff/invoices/", {"customer_id": customer.id, "period_start": LAST_MONTH,
                                                 "period_end": LAST_MONTH_END, "include_monthly_fees": "1",
                                                 "fingerprint": fingerprint})
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    return session.scalar(sa.select(Invoice).where(Invoice.customer_id == customer.id))


def test_preview_then_draft_then_discount_send_and_payments(session, browser, manager, outbox):
    customer = Customer(session)
    page = _preview(browser, customer).get_data(as_text=True)
    assert "Make the draft" in page and "$1,300.00" in page and "(4 h included, 2 h additional)" in page
    assert session.scalar(sa.select(sa.func.count()).select_from(Invoice)
                          .where(Invoice.customer_id == customer.id)) == 0  # a preview writes nothing

    invoice = _generate(browser, session, customer)
    assert (invoice.invoice_status, invoice.total_amount) == (InvoiceStatus.DRAFT, D("1300.00"))
    assert (invoice.period_start, invoice.period_end) == (LAST_MONTH, LAST_MONTH_END)
    url = f"/staff/invoices/{invoice.invoice_id}"

    # A discount: too big is refused beside the field, nothing changes; a fitting one lowers the total.
    response = browser.post(f"{url}/lines", {"item_type": "discount", "description": "Goodwill", "quantity": "1",
                                             "unit_price": "5000"})
    assert response.status_code == 422 and "at most $1,300.00 can be taken off" in response.get_data(as_text=True)
    assert browser.post(f"{url}/lines", {"item_type": "discount", "description": "Loyalty discount",
                                         "quantity": "1", "unit_price": "100.00"}).status_code == 303
    session.refresh(invoice)
    assert invoice.total_amount == D("1200.00")

    # Removing a work line frees its entry (the usage page shows it as not yet invoiced again).
    work_line = next(line for line in invoice.line_items if line.time_entry_id == customer.entries[1].entry_id)
    assert browser.post(f"{url}/lines/{work_line.line_item_id}/remove").status_code == 303
    session.refresh(invoice)
    assert invoice.total_amount == D("900.00")  # 1,000 - 100; the first 6 h were included

    assert browser.post(f"{url}/send").status_code == 303
    session.refresh(invoice)
    assert invoice.invoice_status == InvoiceStatus.SENT and invoice.sent_at is not None
    document = session.get(InvoiceDocument, invoice.invoice_id)
    assert document.pdf.startswith(b"%PDF")
    assert [m.to for m in outbox] == [customer.billing.email]
    assert invoice.invoice_number in outbox[0].subject and "$900.00" in outbox[0].body
    assert browser.post(f"{url}/send").status_code == 409  # sent once

    # Payments: a part leaves it sent; more than is owed is refused with the reason; the rest pays it.
    today = clock.today().isoformat()
    assert browser.post(f"{url}/payments", {"payment_date": today, "amount": "400.00", "method": "bank_transfer",
                                            "reference": "=HYPERLINK(1)"}).status_code == 303
    session.refresh(invoice)
    assert (invoice.invoice_status, invoice.paid_amount) == (InvoiceStatus.SENT, D("400.00"))
    response = browser.post(f"{url}/payments", {"payment_date": today, "amount": "600.00", "method": "card"})
    assert response.status_code == 422
    assert "$500.00 is still outstanding" in response.get_data(as_text=True)
    assert browser.post(f"{url}/payments", {"payment_date": today, "amount": "500", "method": "card"}).status_code == 303
    session.refresh(invoice)
    assert (invoice.invoice_status, invoice.paid_amount) == (InvoiceStatus.PAID, D("900.00"))
    assert invoice.paid_at is not None
    assert session.scalar(sa.select(sa.func.sum(Payment.amount)).where(Payment.invoice_id == invoice.invoice_id)) == D(
        "900.00")
    assert browser.post(f"{url}/cancel").status_code == 409  # paid: not cancelled
    # Every change is in the audit log.
    actions = session.scalars(sa.select(AuditEvent.action).where(AuditEvent.table_name == "invoices",
                                                                 AuditEvent.row_id == invoice.invoice_id)
                              .order_by(AuditEvent.event_id)).all()
    assert actions == ["invoice.generated", "invoice.line_added", "invoice.line_removed", "invoice.sent",
                       "invoice.payment_recorded", "invoice.payment_recorded", "invoice.paid"]
    # The document kept is what the customer downloads, whatever changes later.
    assert browser.client.get(f"{url}/pdf").data == document.pdf


def test_cancel_keeps_the_lines_and_frees_the_work(session, browser, manager):
    customer = Customer(session)
    invoice = _generate(browser, session, customer)
    url = f"/staff/invoices/{invoice.invoice_id}"
    assert browser.post(f"{url}/cancel").status_code == 409  # a draft is deleted, not cancelled
    browser.post(f"{url}/send")
    assert browser.post(f"{url}/cancel").status_code == 303
    session.refresh(invoice)
    assert invoice.invoice_status == InvoiceStatus.CANCELLED and len(invoice.line_items) == 3
    assert not any(line.live for line in invoice.line_items)
    again = browser.get(f"/staff/invoices/new?customer_id={customer.id}&period_start={LAST_MONTH}"
                        f"&period_end={LAST_MONTH_END}&include_monthly_fees=1").get_data(as_text=True)
    assert "$1,300.00" in again  # the same fee and work, billable again


def test_nothing_to_bill_names_the_draft_that_holds_the_period(session, browser, manager):
    customer = Customer(session)
    invoice = _generate(browser, session, customer)
    page = _preview(browser, customer).get_data(as_text=True)
    assert "Nothing to bill" in page
    assert (f'Draft <a href="/staff/invoices/{invoice.invoice_id}">{invoice.invoice_number}</a> covers this period'
            in page)


def test_delete_a_draft(session, browser, manager):
    customer = Customer(session)
    invoice = _generate(browser, session, customer)
    assert browser.post(f"/staff/invoices/{invoice.invoice_id}/delete").status_code == 303
    session.expire_all()
    assert session.get(Invoice, invoice.invoice_id) is None


def test_generate_refuses_a_stale_preview_and_shows_the_new_one(session, browser, manager):
    customer = Customer(session)
    page = _preview(browser, customer).get_data(as_text=True)
    fingerprint = page.split('name="fingerprint" value="')[1].split('"')[0]
    f.make_time_entry(session, ticket=f.make_ticket(session, customer=customer.row), work_date=LAST_MONTH,
                      hours_worked=D("1.00"), approval_status="approved")
    response = browser.post("/staff/invoices/", {"customer_id": customer.id, "period_start": LAST_MONTH,
                                                 "period_end": LAST_MONTH_END, "include_monthly_fees": "1",
                                                 "fingerprint": fingerprint})
    assert response.status_code == 409
    assert "changed since the preview" in response.get_data(as_text=True)
    assert "$1,450.00" in response.get_data(as_text=True)


def test_bad_input_is_shown_beside_the_field(session, browser, manager):
    response = browser.get(f"/staff/invoices/new?customer_id=&period_start=2026-13-01&period_end={LAST_MONTH}")
    text = response.get_data(as_text=True)
    assert response.status_code == 422 and "Enter the first day of the period as YYYY-MM-DD." in text
    response = browser.get(f"/staff/invoices/new?customer_id={Customer(session).id}&period_start={LAST_MONTH_END}"
                           f"&period_end={LAST_MONTH}")
    assert response.status_code == 422 and "The period must end on or after its start." in response.get_data(as_text=True)


def test_month_end_run_through_the_worker_twice_makes_nothing_twice(session, browser, manager, run_jobs):
    customers = [Customer(session, name=None) for _ in range(2)] + [Customer(session)]
    quiet = f.make_customer(session)  # no contract, no work: nothing to bill
    response = browser.post("/staff/invoices/month-end", {"month": f"{LAST_MONTH:%Y-%m}"})
    assert response.status_code == 303
    run_url = response.headers["Location"]
    # Started again while it runs: the same run, no second one.
    assert browser.post("/staff/invoices/month-end", {"month": f"{LAST_MONTH:%Y-%m}"}).headers["Location"] == run_url
    page = browser.get(run_url).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in page and "<progress" in page
    run_jobs()
    run = session.scalar(sa.select(InvoiceRun).order_by(InvoiceRun.run_id.desc()))
    session.refresh(run)
    assert run.status == "done" and run.made >= 3 and run.failed == 0
    page = browser.get(run_url).get_data(as_text=True)
    assert 'hx-trigger' not in page and "Pine Street Dental" in page and quiet.company_name in page
    totals = [session.scalar(sa.select(Invoice.total_amount).where(Invoice.customer_id == c.id)) for c in customers]
    assert totals == [D("1300.00")] * 3

    # The second run of the month: every customer has nothing to bill.
    second = browser.post("/staff/invoices/month-end", {"month": f"{LAST_MONTH:%Y-%m}"})
    assert second.headers["Location"] != run_url
    run_jobs()
    again = session.scalar(sa.select(InvoiceRun).order_by(InvoiceRun.run_id.desc()))
    session.refresh(again)
    assert (again.status, again.made, again.failed) == ("done", 0, 0)
    assert [session.scalar(sa.select(sa.func.count()).select_from(Invoice).where(Invoice.customer_id == c.id))
            for c in customers] == [1, 1, 1]


def test_a_month_not_over_is_refused(session, browser, manager):
    response = browser.post("/staff/invoices/month-end", {"month": f"{clock.today():%Y-%m}"})
    assert response.status_code == 422 and "is not over yet" in response.get_data(as_text=True)


def test_the_accountants_export(session, browser, manager):
    customer = Customer(session)
    customer.row.company_name = "=cmd|' /C calc'!A0"
    invoice = _generate(browser, session, customer)
    url = f"/staff/invoices/{invoice.invoice_id}"
    browser.post(f"{url}/lines", {"item_type": "discount", "description": "-Goodwill", "quantity": "1",
                                  "unit_price": "40"})
    browser.post(f"{url}/send")
    browser.post(f"{url}/payments", {"payment_date": clock.today().isoformat(), "amount": "1,000.00",
                                     "method": "check", "reference": "+1234"})
    response = browser.client.get(f"/staff/invoices/export?date_from={clock.today().replace(day=1)}"
                           f"&date_to={clock.today()}")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert sorted(archive.namelist()) == ["invoice_lines.csv", "invoices.csv", "payments.csv"]
    read = lambda name: list(csv.DictReader(io.StringIO(archive.read(name).decode())))  # noqa: E731
    invoices, lines, payments = read("invoices.csv"), read("invoice_lines.csv"), read("payments.csv")
    mine = [row for row in invoices if row["InvoiceNumber"] == invoice.invoice_number]
    assert mine == [{"InvoiceNumber": invoice.invoice_number, "ContactName": "'=cmd|' /C calc'!A0",
                     "InvoiceDate": clock.today().isoformat(), "DueDate": (clock.today() + timedelta(days=30)).isoformat(),
                     "PeriodStart": LAST_MONTH.isoformat(), "PeriodEnd": LAST_MONTH_END.isoformat(), "Status": "sent",
                     "Currency": "USD", "SubTotal": "1260.00", "TaxRate": "0.0000", "TaxAmount": "0.00",
                     "Total": "1260.00", "AmountPaid": "1000.00", "AmountDue": "260.00"}]
    my_lines = [(row["ItemType"], row["Description"][:9], row["Quantity"], row["UnitAmount"], row["LineAmount"])
                for row in lines if row["InvoiceNumber"] == invoice.invoice_number]
    assert my_lines[0][0] == "monthly_fee" and my_lines[0][4] == "1000.00"
    assert my_lines[-1] == ("discount", "'-Goodwil", "1.00", "-40.00", "-40.00")
    assert [(p["Amount"], p["Method"], p["Reference"]) for p in payments if p["InvoiceNumber"] == invoice.invoice_number
            ] == [("1000.00", "check", "'+1234")]
    bad = browser.get("/staff/invoices/export?date_from=2026-05-01&date_to=2026-04-01")
    assert bad.status_code == 422 and "The last day must be on or after the first." in bad.get_data(as_text=True)


def test_pages_run_a_fixed_number_of_statements(session, browser, manager):
    customer = Customer(session)
    invoice = _generate(browser, session, customer)
    f.make_time_entry(session, ticket=f.make_ticket(session, customer=customer.row), work_date=LAST_MONTH,
                      hours_worked=D("0.25"), approval_status="approved")  # something left to preview
    urls = ["/staff/invoices/", f"/staff/invoices/{invoice.invoice_id}", "/staff/invoices/month-end",
            f"/staff/invoices/new?customer_id={customer.id}&period_start={LAST_MONTH}&period_end={LAST_MONTH_END}",
            "/staff/invoices/export"]
    before = {url: count_queries(session, lambda url=url: browser.get(url)) for url in urls}
    for _ in range(30):  # more customers, invoices and work
        other = Customer(session, name=None)
        _generate(browser, session, other)
        f.make_time_entry(session, ticket=f.make_ticket(session, customer=customer.row), work_date=LAST_MONTH,
                          hours_worked=D("0.25"), approval_status="approved")
    after = {url: count_queries(session, lambda url=url: browser.get(url)) for url in urls}
    assert before == after
    assert max(after.values()) <= 12, after


def test_the_customer_page_links_to_bill_a_period(session, browser, manager):
    customer = Customer(session)
    page = browser.get(f"/staff/customers/{customer.id}").get_data(as_text=True)
    assert f'href="/staff/invoices/new?customer_id={customer.id}"' in page and "Bill a period" in page
    preview = browser.get(f"/staff/invoices/new?customer_id={customer.id}").get_data(as_text=True)
    assert "Make the draft" in preview  # last month, previewed at once
    assert '>Invoices</a>' in browser.get("/staff/").get_data(as_text=True)


def test_the_audit_log_shows_billing_events(session, browser, run_jobs):
    admin = f.make_staff(session, role="admin")
    browser.sign_in(admin.email)
    Customer(session)
    browser.post("/staff/invoices/month-end", {"month": f"{LAST_MONTH:%Y-%m}"})
    run_jobs()
    page = browser.get("/staff/admin/audit")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "invoice_run.finished" in text and "invoice.generated" in text


def test_the_list_counts_up_to_a_bound_and_sums_what_is_owed(session, browser, manager, monkeypatch):
    """Past COUNT_LIMIT the list says "N+" (it never counts five years of invoices on every page); what is
    owed is the unpaid rest of sent and overdue invoices only."""
    from decimal import Decimal as D

    from portal.services import billing

    customer = f.make_customer(session, company_name="Bounded Count Co")
    for status, total, paid in (("paid", "100.00", "100.00"), ("sent", "250.00", "50.00"),
                                ("overdue", "80.00", "0.00"), ("draft", "999.00", "0.00")):
        f.make_invoice(session, customer, invoice_status=status, subtotal=D(total), total_amount=D(total),
                       paid_amount=D(paid))
    page = browser.get(f"/staff/invoices/?customer_id={customer.customer_id}").get_data(as_text=True)
    assert "4 invoices · $280.00 outstanding" in page
    monkeypatch.setattr(billing, "COUNT_LIMIT", 3)
    page = browser.get(f"/staff/invoices/?customer_id={customer.customer_id}").get_data(as_text=True)
    assert "3+ invoices · $280.00 outstanding" in page
    assert f'<option value="{customer.customer_id}" selected>Bounded Count Co</option>' in page
