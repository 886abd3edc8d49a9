"""The accountant's export: a period's invoices, their lines and the payments received, as three CSV
files in a zip, with the column names QuickBooks Online and Xero import (ContactName, InvoiceNumber,
InvoiceDate, DueDate, Description, Quantity, UnitAmount, ...).

- Invoices: those dated in the period that reached the customer (sent, paid, overdue, cancelled;
  drafts are not bills yet). A cancelled invoice is listed with its status so the books can void it.
- Payments: those received in the period, whatever the invoice's date.
- Numbers are plain decimals ("1273.08", "-40.00": no currency sign, no thousands separator), dates
  ISO 8601 (2026-11-30), UTF-8 with a header row.
- Text a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a carriage return)
  gets a leading apostrophe (OWASP's CSV injection advice); numbers are never altered.
"""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from decimal import Decimal

import sqlalchemy as sa

from portal.models import Customer, Invoice, InvoiceLineItem, InvoiceStatus, LineItemType, Payment
from portal.services import policy
from portal.services.errors import Forbidden, Invalid
from portal.services.statuses import INVOICES_ISSUED

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MAX_DAYS = 3 * 366

INVOICE_COLUMNS = ["InvoiceNumber", "ContactName", "InvoiceDate", "DueDate", "PeriodStart", "PeriodEnd", "Status",
                   "Currency", "SubTotal", "TaxRate", "TaxAmount", "Total", "AmountPaid", "AmountDue"]
LINE_COLUMNS = ["InvoiceNumber", "ContactName", "InvoiceDate", "DueDate", "LineNumber", "ItemType", "Description",
                "Quantity", "UnitAmount", "LineAmount", "TaxRate", "ContractMonth"]
PAYMENT_COLUMNS = ["PaymentDate", "InvoiceNumber", "ContactName", "Amount", "Method", "Reference"]


def safe_text(value: str | None) -> str:
    """Text for a CSV cell that no spreadsheet runs as a formula."""
    text = value or ""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def plain(value: Decimal | None, places: str = "0.01") -> str:
    return "" if value is None else f"{Decimal(value).quantize(Decimal(places)):f}"


def _iso(value: date | None) -> str:
    return value.isoformat() if value else ""


def _csv(columns: list[str], rows) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def export_files(session, principal: policy.Principal, date_from: date | None, date_to: date | None
                 ) -> dict[str, str]:
    """{file name: CSV text} of the period [date_from, date_to], in three queries.

    :raises Forbidden: not an account manager or admin.
    :raises Invalid: a day missing, the range reversed, or longer than three years.
    """
    if not policy.may_bill(principal):
        raise Forbidden("Only account managers and administrators export the books.")
    errors = {}
    if date_from is None:
        errors["date_from"] = "Enter the first day as YYYY-MM-DD."
    if date_to is None:
        errors["date_to"] = "Enter the last day as YYYY-MM-DD."
    elif date_from is not None and date_to < date_from:
        errors["date_to"] = "The last day must be on or after the first."
    elif date_from is not None and (date_to - date_from).days > MAX_DAYS:
        errors["date_to"] = "Export at most three years at once."
    if errors:
        field = next(iter(errors))
        raise Invalid(errors[field], field, errors)

    in_period = sa.and_(Invoice.invoice_date.between(date_from, date_to), Invoice.invoice_status.in_(INVOICES_ISSUED))
    invoices = session.execute(
        sa.select(Invoice, Customer.company_name).join(Customer, Customer.customer_id == Invoice.customer_id)
        .where(in_period).order_by(Invoice.invoice_date, Invoice.invoice_number)).all()
    invoice_rows = []
    for invoice, name in invoices:
        due = invoice.total_amount - invoice.paid_amount if invoice.invoice_status != InvoiceStatus.CANCELLED else 0
        invoice_rows.append([safe_text(invoice.invoice_number), safe_text(name), _iso(invoice.invoice_date),
                             _iso(invoice.due_date), _iso(invoice.period_start), _iso(invoice.period_end),
                             invoice.invoice_status.value, "USD", plain(invoice.subtotal), plain(invoice.tax_rate, "0.0001"),
                             plain(invoice.tax_amount), plain(invoice.total_amount), plain(invoice.paid_amount),
                             plain(max(Decimal(due), Decimal(0)))])
    lines = session.execute(
        sa.select(InvoiceLineItem, Invoice.invoice_number, Invoice.invoice_date, Invoice.due_date, Invoice.tax_rate,
                  Customer.company_name)
        .join(Invoice, Invoice.invoice_id == InvoiceLineItem.invoice_id)
        .join(Customer, Customer.customer_id == Invoice.customer_id)
        .where(in_period).order_by(Invoice.invoice_date, Invoice.invoice_number, InvoiceLineItem.line_item_id)).all()
    line_rows, numbers = [], {}
    for line, number, invoice_date, due_date, tax_rate, name in lines:
        numbers[number] = numbers.get(number, 0) + 1
        sign = -1 if line.item_type == LineItemType.DISCOUNT else 1
        line_rows.append([safe_text(number), safe_text(name), _iso(invoice_date), _iso(due_date), numbers[number],
                          line.item_type.value, safe_text(line.description), plain(line.quantity),
                          plain(sign * line.unit_price), plain(sign * line.line_total), plain(tax_rate, "0.0001"),
                          _iso(line.billing_month)])
    payments = session.execute(
        sa.select(Payment, Invoice.invoice_number, Customer.company_name)
        .join(Invoice, Invoice.invoice_id == Payment.invoice_id)
        .join(Customer, Customer.customer_id == Payment.customer_id)
        .where(Payment.payment_date.between(date_from, date_to))
        .order_by(Payment.payment_date, Payment.payment_id)).all()
    payment_rows = [[_iso(p.payment_date), safe_text(number), safe_text(name), plain(p.amount), p.method,
                     safe_text(p.reference)] for p, number, name in payments]
    return {"invoices.csv": _csv(INVOICE_COLUMNS, invoice_rows),
            "invoice_lines.csv": _csv(LINE_COLUMNS, line_rows),
            "payments.csv": _csv(PAYMENT_COLUMNS, payment_rows)}


def export_zip(session, principal: policy.Principal, date_from: date | None, date_to: date | None) -> bytes:
    """The export as a zip of its three CSV files (see export_files). :raises: as export_files."""
    files = export_files(session, principal, date_from, date_to)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text.encode("utf-8"))
    return buffer.getvalue()
