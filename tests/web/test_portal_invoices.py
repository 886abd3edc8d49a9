"""The portal's invoices pages: the list (full page and fragment), one invoice, its PDF, who may see
them, a fixed number of queries, and a PDF renderer that reads nothing but the app's static files."""

from __future__ import annotations

import io
import socket
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from pypdf import PdfReader

from portal.services import invoice_pdf
from portal.services.invoice_pdf import Issuer, RefusedResource, StaticOnlyFetcher, render_invoice_pdf
from tests import factories as f
from tests.conftest import count_queries

STATIC = Path(__file__).resolve().parents[2] / "static"


def _invoice(session, customer, status="sent", total="100.00", paid="0", day=date(2026, 7, 1), lines=1, **kw):
    made = f.make_invoice(session, customer=customer, invoice_status=status, paid_amount=D(paid),
                          invoice_date=day, due_date=day + timedelta(days=30), **kw)
    for n in range(lines):
        f.make_line(session, made, unit_price=D(total), line_total=D(total), item_type="hourly_work",
                    description=f"Printer repair {made.invoice_number} #{n + 1}")
    session.refresh(made)
    return made


@pytest.fixture
def customer(session):
    return f.make_customer(session, company_name="Granite Peak Dental",
                           billing_address="12 Pearl Street\nBoulder, CO 80302")


@pytest.fixture
def billing(browser, session, customer):
    contact = f.make_contact_login(session, customer=customer, is_billing_contact=True, can_create_tickets=False)
    browser.sign_in(contact.email)
    return contact


def _pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


# --- the list ------------------------------------------------------------------------------------

def test_list_full_page_and_fragment(browser, session, customer, billing):
    sent = _invoice(session, customer, status="sent", total="300.00", paid="100.00", day=date(2026, 7, 1))
    overdue = _invoice(session, customer, status="overdue", total="250.00", day=date(2026, 5, 1))
    draft = _invoice(session, customer, status="draft", total="999.00")
    page = browser.get("/portal/invoices")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in body and "HX-Request" in page.headers["Vary"]
    assert sent.invoice_number in body and overdue.invoice_number in body and draft.invoice_number not in body
    # The summary: outstanding across the due invoices, and how much of it is overdue.
    assert "Outstanding: <strong>$450.00</strong> across 2 invoices" in body
    assert "$250.00 overdue" in body and "invoice-row--overdue" in body and "days late" in body
    assert f'href="/portal/invoices/{sent.invoice_id}"' in body

    fragment = browser.client.get("/portal/invoices?status=overdue", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text and text.lstrip().startswith('<section id="invoice-results"')
    assert overdue.invoice_number in text and sent.invoice_number not in text


def test_due_means_sent_and_overdue(browser, session, customer, billing):
    made = {status: _invoice(session, customer, status=status, paid="100.00" if status == "paid" else "0")
            for status in ("sent", "overdue", "paid", "cancelled")}
    body = browser.get("/portal/invoices?status=due").get_data(as_text=True)
    assert made["sent"].invoice_number in body and made["overdue"].invoice_number in body
    assert made["paid"].invoice_number not in body and made["cancelled"].invoice_number not in body
    assert '<option value="due" selected>' in body


def test_pages_keep_the_filter_in_the_url(browser, session, customer, billing):
    for n in range(27):
        _invoice(session, customer, status="paid", paid="100.00", day=date(2024, 1, 1) + timedelta(days=n))
    body = browser.get("/portal/invoices?status=paid").get_data(as_text=True)
    assert "Page 1 of 2" in body and 'href="/portal/invoices?status=paid&amp;page=2"' in body
    second = browser.get("/portal/invoices?status=paid&page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second and "Previous" in second
    assert browser.get("/portal/invoices?status=paid&page=abc").status_code == 200
    assert browser.get("/portal/invoices?page=99999999999999999999").status_code == 200


def test_empty_states(browser, session, customer, billing):
    body = browser.get("/portal/invoices").get_data(as_text=True)
    assert "No invoices yet" in body and "Nothing to pay right now." in body
    _invoice(session, customer, status="paid", paid="100.00")
    body = browser.get("/portal/invoices?status=overdue").get_data(as_text=True)
    assert "No invoices with this status" in body and "Show all invoices" in body


def test_the_empty_state_as_a_fragment(browser, session, customer, billing):
    fragment = browser.client.get("/portal/invoices", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text
    assert "No invoices yet" in text and "When TechServ bills Granite Peak Dental" in text


def test_the_list_runs_a_fixed_number_of_queries(browser, session, customer, billing):
    for n in range(3):
        _invoice(session, customer, status=("sent", "overdue", "paid")[n % 3], day=date(2026, 1, 1) + timedelta(days=n))

    def load():
        assert browser.client.get("/portal/invoices").status_code == 200

    load()  # warm up
    few = count_queries(session, load)
    for n in range(57):
        _invoice(session, customer, status=("sent", "overdue", "paid", "cancelled")[n % 4],
                 day=date(2025, 1, 1) + timedelta(days=n))
    assert count_queries(session, load) == few


# --- one invoice -----------------------------------------------------------------------------------

def test_an_invoice_page(browser, session, customer, billing):
    contract = f.make_contract(session, customer=customer)
    made = f.make_invoice(session, customer=customer, invoice_status="sent", tax_rate=D("0.0825"),
                          contract_id=contract.contract_id, payment_terms="Net 30")
    f.make_line(session, made, description="Monthly fee, professional plan", item_type="monthly_fee",
                unit_price=D("1200.00"), line_total=D("1200.00"))
    f.make_line(session, made, description="Loyalty discount", item_type="discount",
                unit_price=D("100.00"), line_total=D("100.00"))
    body = browser.get(f"/portal/invoices/{made.invoice_id}").get_data(as_text=True)
    assert made.invoice_number in body and "Granite Peak Dental" in body and "12 Pearl Street" in body
    assert "Monthly fee, professional plan" in body and ">Monthly fee<" in body and ">Discount<" in body
    assert "&minus;$100.00" in body and "Tax (8.25 %)" in body and "$1,190.75" in body  # 1100 + 90.75
    assert "Net 30" in body and contract.contract_number in body
    assert f'href="/portal/invoices/{made.invoice_id}/pdf"' in body and "Download PDF" in body


def test_an_invoice_page_runs_a_fixed_number_of_queries(browser, session, customer, billing):
    made = _invoice(session, customer, lines=3)
    url = f"/portal/invoices/{made.invoice_id}"  # not inside load(): reading the test's expired row is a query

    def load():
        assert browser.client.get(url).status_code == 200

    load()
    few = count_queries(session, load)
    for n in range(57):
        f.make_line(session, made, description=f"More work {n}")
    assert count_queries(session, load) == few


def test_drafts_other_customers_and_missing_invoices_are_404(browser, session, customer, billing):
    draft = _invoice(session, customer, status="draft")
    theirs = _invoice(session, f.make_customer(session), status="sent")
    for invoice_id in (draft.invoice_id, theirs.invoice_id, 999_999_999, 2**31):
        assert browser.client.get(f"/portal/invoices/{invoice_id}").status_code == 404
        assert browser.client.get(f"/portal/invoices/{invoice_id}/pdf").status_code == 404


@pytest.mark.parametrize("flags", [{}, {"can_approve_projects": True}, {"can_create_tickets": False}])
def test_contacts_who_are_neither_billing_nor_primary_get_403(browser, session, customer, flags):
    contact = f.make_contact_login(session, customer=customer, **flags)
    made = _invoice(session, customer)
    browser.sign_in(contact.email)
    for url in ("/portal/invoices", f"/portal/invoices/{made.invoice_id}", f"/portal/invoices/{made.invoice_id}/pdf"):
        assert browser.client.get(url).status_code == 403
    assert 'href="/portal/invoices"' not in browser.get("/portal/").get_data(as_text=True)


def test_a_primary_contact_sees_the_invoices_too(browser, session, customer):
    contact = f.make_contact_login(session, customer=customer, is_primary_contact=True)
    made = _invoice(session, customer)
    browser.sign_in(contact.email)
    assert made.invoice_number in browser.get("/portal/invoices").get_data(as_text=True)


# --- the PDF ---------------------------------------------------------------------------------------

def test_the_pdf_download(browser, session, customer, billing):
    made = _invoice(session, customer, status="overdue", total="1234.50")
    response = browser.client.get(f"/portal/invoices/{made.invoice_id}/pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="{made.invoice_number}.pdf"'
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data.startswith(b"%PDF-")
    text = _pdf_text(response.data)
    assert made.invoice_number in text and f"Printer repair {made.invoice_number} #1" in text
    assert "$1,234.50" in text and "Amount due" in text and "Granite Peak Dental" in text
    assert "TechServ Solutions" in text and "billing@techserv.com" in text  # the issuer's defaults


def test_the_pdf_issuer_comes_from_the_settings(app, browser, session, customer, billing, monkeypatch):
    monkeypatch.setitem(app.config, "INVOICE_ISSUER_NAME", "Summit IT Partners")
    monkeypatch.setitem(app.config, "INVOICE_ISSUER_ADDRESS", "400 Blake St|Denver, CO 80205")
    monkeypatch.setitem(app.config, "INVOICE_ISSUER_EMAIL", "ar@summit-it.example")
    made = _invoice(session, customer, status="paid", paid="100.00")
    text = _pdf_text(browser.client.get(f"/portal/invoices/{made.invoice_id}/pdf").data)
    assert "Summit IT Partners" in text and "400 Blake St" in text and "Denver, CO 80205" in text
    assert "ar@summit-it.example" in text and "PAID" in text.upper()


def test_markup_in_a_line_is_printed_as_text_and_nothing_is_fetched(session, customer, monkeypatch):
    fetched = []
    original = StaticOnlyFetcher.__call__

    def recording(self, url, *args, **kwargs):
        fetched.append(url)
        return original(self, url, *args, **kwargs)

    monkeypatch.setattr(StaticOnlyFetcher, "__call__", recording)
    made = f.make_invoice(session, customer=customer, invoice_status="sent")
    f.make_line(session, made, description='<img src="file:///etc/passwd">')
    f.make_line(session, made, description="<link rel=stylesheet href=http://127.0.0.1:9/x.css>")
    session.refresh(made)
    html = invoice_pdf.invoice_html(made, list(made.line_items), Issuer("TechServ", (), ""))
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html and "<img src=\"file:" not in html
    body = render_invoice_pdf(made, list(made.line_items), Issuer("TechServ", (), ""))
    text = _pdf_text(body)
    assert '<img src="file:///etc/passwd">' in text and "<link rel=stylesheet href=http://127.0.0.1:9/x.css>" in text
    assert "root:" not in text
    assert fetched and all(url.startswith(STATIC.resolve().as_uri() + "/") for url in fetched), fetched


# --- the URL fetcher -------------------------------------------------------------------------------

@pytest.fixture
def fetcher():
    return StaticOnlyFetcher(STATIC)


def test_the_fetcher_serves_a_static_file(fetcher):
    response = fetcher(fetcher.base_url + "css/invoice-pdf.css")
    assert b"@page" in response.read() and response.headers.get_content_type() == "text/css"
    response.close()


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "file://localhost/etc/passwd",
    "file://evil.example/etc/passwd",
    "http://127.0.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "https://example.com/font.woff2",
    "ftp://127.0.0.1/x",
    "data:text/css,body{}",
    "data:image/svg+xml;base64,PHN2Zy8+",
    "gopher://127.0.0.1:6379/_INFO",
    "css/invoice-pdf.css",
    "file:///proc/self/environ",
])
def test_the_fetcher_refuses_anything_but_static_files(fetcher, url):
    with pytest.raises(RefusedResource):
        fetcher(url)


@pytest.mark.parametrize("escape", ["../pyproject.toml", "css/../../pyproject.toml", "%2e%2e/pyproject.toml",
                                    "css/%2E%2E/%2E%2E/pyproject.toml", "..%2fpyproject.toml", "nonexistent.css",
                                    "css/", "css/invoice-pdf.css%00.png"])
def test_the_fetcher_refuses_escapes_from_the_static_folder(fetcher, escape):
    with pytest.raises(RefusedResource):
        fetcher(fetcher.base_url + escape)


def test_the_fetcher_refuses_a_symlink_that_leads_outside(tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (static / "ok.css").write_text("body {}")
    (static / "leak.css").symlink_to(tmp_path / "secret.txt")
    fetcher = StaticOnlyFetcher(static)
    fetcher(fetcher.base_url + "ok.css").close()
    with pytest.raises(RefusedResource):
        fetcher(fetcher.base_url + "leak.css")


def test_a_document_pointing_at_the_network_makes_no_connection(session, customer):
    """Even markup that reached the renderer (it cannot: the template escapes) is not fetched."""
    from weasyprint import HTML

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        fetcher = StaticOnlyFetcher(STATIC)
        HTML(string=f'<link rel="stylesheet" href="http://127.0.0.1:{port}/x.css">'
                    f'<img src="http://127.0.0.1:{port}/x.png"><img src="file:///etc/passwd">'
                    f'<p style="background: url(http://127.0.0.1:{port}/bg.png)">x</p>',
             base_url=fetcher.base_url, url_fetcher=fetcher).write_pdf()
        with pytest.raises(BlockingIOError):
            listener.accept()
    finally:
        listener.close()


def test_the_issuer_settings_and_their_defaults(monkeypatch):
    from portal.config import settings_from_environment
    from portal.services.invoice_pdf import issuer_from_config

    for name in ("INVOICE_ISSUER_NAME", "INVOICE_ISSUER_ADDRESS", "INVOICE_ISSUER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    issuer = issuer_from_config(settings_from_environment())
    assert issuer == Issuer("TechServ Solutions", ("Denver, Colorado", "United States"), "billing@techserv.com")
    monkeypatch.setenv("INVOICE_ISSUER_NAME", "Summit IT")
    monkeypatch.setenv("INVOICE_ISSUER_ADDRESS", "400 Blake St | Suite 2\nDenver, CO 80205|")
    issuer = issuer_from_config(settings_from_environment())
    assert issuer.name == "Summit IT" and issuer.address_lines == ("400 Blake St", "Suite 2", "Denver, CO 80205")
