"""An invoice's life after generation (services/billing.py): expense and discount lines, payments
(partial, exact, over), cancel, the overdue scan beside paid and cancelled invoices, and two clerks
paying at once."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal as D

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from portal.models import EmployeeRole, Invoice, InvoiceStatus, LineItemType, Payment
from portal.services import billing, invoicing
from portal.services.errors import Conflict, Forbidden, Invalid
from portal.services.invoice_pdf import Issuer
from portal.services.policy import Principal
from tests import factories as f

SYSTEM = Principal.system("test")
ISSUER = Issuer("TechServ Solutions", ("Denver",), "billing@techserv.example")
TODAY = date(2026, 7, 10)
NOW = datetime(2026, 7, 10, 15, 0, tzinfo=UTC)


def _draft(session, *, hours="3.00", rate="100.00", tax="0"):
    customer = f.make_customer(session)
    f.make_time_entry(session, ticket=f.make_ticket(session, customer=customer), work_date=date(2026, 6, 2),
                      hours_worked=D(hours), approval_status="approved", billing_rate=D(rate))
    return invoicing.generate_invoice(session, SYSTEM, invoicing.InvoiceRequest(customer.customer_id, date(2026, 6, 1),
                                                                                date(2026, 6, 30)),
                                      invoice_date=date(2026, 7, 1), tax_rate=D(tax))


def _sent(session, **kw):
    invoice = _draft(session, **kw)
    billing.send_invoice(session, SYSTEM, invoice.invoice_id, issuer=ISSUER, static_folder=invoicing_static(),
                         now=NOW)
    return invoice


def invoicing_static():
    from portal.services.invoice_pdf import STATIC_DIR

    return STATIC_DIR


def pay(session, invoice, amount, day=TODAY, method="bank_transfer"):
    return billing.record_payment(session, SYSTEM, invoice.invoice_id,
                                  billing.NewPayment(day, D(amount), method, "REF"), today=TODAY, now=NOW)


def test_expense_and_discount_lines_with_tax_half_up(session):
    invoice = _draft(session, tax="0.0825")  # 300.00
    billing.add_line(session, SYSTEM, invoice.invoice_id,
                     billing.NewLine(LineItemType.EXPENSE, "Replacement toner", D("2"), D("45.50")))
    billing.add_line(session, SYSTEM, invoice.invoice_id,
                     billing.NewLine(LineItemType.DISCOUNT, "Goodwill", D("1"), D("25.00")))
    session.refresh(invoice)
    # 300 + 91 - 25 = 366.00; tax 30.195 -> 30.20 (half up)
    assert (invoice.subtotal, invoice.tax_amount, invoice.total_amount) == (D("366.00"), D("30.20"), D("396.20"))
    with pytest.raises(Invalid) as caught:
        billing.add_line(session, SYSTEM, invoice.invoice_id,
                         billing.NewLine(LineItemType.DISCOUNT, "Too much", D("1"), D("366.01")))
    assert caught.value.field == "unit_price"
    with pytest.raises(Invalid) as caught:
        billing.add_line(session, SYSTEM, invoice.invoice_id, billing.NewLine(LineItemType.HOURLY_WORK, "", None, D("-1")))
    assert set(caught.value.errors) == {"item_type", "description", "quantity", "unit_price"}


def test_partial_then_exact_payment_marks_it_paid(session):
    invoice = _sent(session)
    pay(session, invoice, "100.00")
    assert (invoice.invoice_status, invoice.paid_amount, invoice.paid_at) == (InvoiceStatus.SENT, D("100.00"), None)
    pay(session, invoice, "200.00")
    assert (invoice.invoice_status, invoice.paid_amount, invoice.paid_at) == (InvoiceStatus.PAID, D("300.00"), NOW)
    with pytest.raises(Conflict):
        pay(session, invoice, "1.00")  # paid: nothing more to record


def test_over_payment_is_refused_and_records_nothing(session):
    invoice = _sent(session)
    pay(session, invoice, "250.00")
    with pytest.raises(Invalid) as caught:
        pay(session, invoice, "50.01")
    assert caught.value.field == "amount" and "$50.00 is still outstanding" in caught.value.message
    assert session.scalar(sa.select(sa.func.count()).select_from(Payment)
                          .where(Payment.invoice_id == invoice.invoice_id)) == 1
    with pytest.raises(Invalid) as caught:
        pay(session, invoice, "10.00", day=date(2026, 7, 11))  # tomorrow
    assert caught.value.field == "payment_date"


def test_a_draft_takes_no_payment_and_only_staff_who_bill_may(session):
    invoice = _draft(session)
    with pytest.raises(Conflict):
        pay(session, invoice, "10.00")
    tech = Principal(account_id=1, email="tech@techserv.example", name="Tech", employee_id=1,
                     role=EmployeeRole.TECHNICIAN)
    with pytest.raises(Forbidden):
        billing.record_payment(session, tech, invoice.invoice_id, billing.NewPayment(TODAY, D("1"), "cash"))


def test_cancel_refuses_drafts_and_paid_money(session):
    draft = _draft(session)
    with pytest.raises(Conflict):
        billing.cancel_invoice(session, SYSTEM, draft.invoice_id, now=NOW)
    sent = _sent(session)
    pay(session, sent, "10.00")
    with pytest.raises(Conflict) as caught:
        billing.cancel_invoice(session, SYSTEM, sent.invoice_id, now=NOW)
    assert "refund it before cancelling" in caught.value.message


def test_the_overdue_scan_leaves_paid_and_cancelled_invoices_alone(session):
    late, paid, cancelled = _sent(session), _sent(session), _sent(session)
    pay(session, paid, "300.00")
    billing.cancel_invoice(session, SYSTEM, cancelled.invoice_id, now=NOW)
    marked = invoicing.mark_overdue(session, SYSTEM, today=date(2026, 8, 15))  # due 31 Jul
    assert marked >= 1
    for invoice in (late, paid, cancelled):
        session.refresh(invoice)
    assert [late.invoice_status, paid.invoice_status, cancelled.invoice_status] == [
        InvoiceStatus.OVERDUE, InvoiceStatus.PAID, InvoiceStatus.CANCELLED]
    # An overdue invoice is still paid in full by its payment.
    billing.record_payment(session, SYSTEM, late.invoice_id, billing.NewPayment(date(2026, 8, 15), D("300.00"), "card"),
                           today=date(2026, 8, 15), now=NOW)
    assert late.invoice_status == InvoiceStatus.PAID


def test_the_database_refuses_a_cancelled_invoice_back_and_a_changed_document(session, savepoint):
    invoice = _sent(session)
    billing.cancel_invoice(session, SYSTEM, invoice.invoice_id, now=NOW)
    error = savepoint.fails("UPDATE invoices SET invoice_status = 'sent' WHERE invoice_id = :i", {"i": invoice.invoice_id})
    assert error is not None and "stays cancelled" in str(error)
    error = savepoint.fails("UPDATE invoice_documents SET pdf = 'x' WHERE invoice_id = :i", {"i": invoice.invoice_id})
    assert error is not None and "never changes" in str(error)


def test_two_clerks_paying_at_once_never_overpay(pg, app):
    """Each records 200.00 of a 300.00 invoice at the same moment: the row lock makes the second see the
    first's payment, so it is refused with what is left; the total paid never exceeds the invoice."""
    name = pg.create_database("techserv_pay_race")
    try:
        from tests.test_migrations import migrate_database

        migrate_database(pg, name)
        engine = sa.create_engine(pg.url_for(name))
        Session = orm.sessionmaker(engine)
        with Session.begin() as setup:
            invoice_id = _sent(setup).invoice_id
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def clerk() -> None:
            with Session() as s:
                barrier.wait()
                try:
                    pay(s, s.get(Invoice, invoice_id), "200.00")
                    s.commit()
                    outcomes.append("paid")
                except Invalid as error:
                    s.rollback()
                    outcomes.append(error.message)

        threads = [threading.Thread(target=clerk) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes)[1] == "paid" and "$100.00 is still outstanding" in sorted(outcomes)[0], outcomes
        with psycopg.connect(pg.libpq_url_for(name)) as conn:
            paid, payments = conn.execute("SELECT i.paid_amount, (SELECT sum(amount) FROM payments p WHERE"
                                          " p.invoice_id = i.invoice_id) FROM invoices i WHERE invoice_id = %s",
                                          (invoice_id,)).fetchone()
        assert paid == payments == D("200.00")
        engine.dispose()
    finally:
        pg.drop_database(name)


def test_a_contact_reads_only_its_customers_payments_and_documents(session):
    from portal.services.tenancy import apply_contact_scope, clear_contact_scope

    mine, theirs = _sent(session), _sent(session)
    pay(session, mine, "10.00")
    pay(session, theirs, "20.00")
    contact = f.make_contact(session, customer=mine.customer)
    apply_contact_scope(session, mine.customer_id, contact.contact_id)
    try:
        amounts = session.execute(sa.text("SELECT amount FROM payments")).scalars().all()
        documents = session.execute(sa.text("SELECT invoice_id FROM invoice_documents")).scalars().all()
        nested = session.begin_nested()
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):  # staff's only: no grant at all
            session.execute(sa.text("SELECT count(*) FROM invoice_run_items"))
        nested.rollback()
    finally:
        clear_contact_scope(session)
    assert amounts == [D("10.00")] and documents == [mine.invoice_id]
