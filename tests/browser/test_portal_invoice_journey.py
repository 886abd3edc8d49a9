"""A billing contact finds the invoices to pay, opens one and downloads its PDF: real Chromium, real server.

Only reads the demo data (each customer's last three months of invoices), so it consumes nothing
another journey needs.
"""

from __future__ import annotations

import io
import re

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from tests.browser.conftest import DOWNLOAD_TIMEOUT_MS, htmx_settled, sign_in

# Billing contacts of the demo data: Karen Holt (Denver Tech, billing only) and Elena Petrova
# (Alpine Legal, billing and primary, with an overdue invoice paid in part).
CONTACTS = {"desktop": "karen.holt@denvertech.com", "phone": "elena.petrova@alpinelegal.com"}


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_billing_contact_downloads_an_invoice_pdf(new_page, page_problems, size):
    page = new_page(size)
    sign_in(page, CONTACTS[size])
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("heading", name="Invoices", exact=True)).to_be_visible()
    expect(page.locator(".invoice-summary")).to_contain_text("Outstanding:")
    rows = page.locator("#invoice-results tbody tr")
    expect(rows.first).to_be_visible()
    page.screenshot(path=f"/tmp/invoices-list-{size}.png", full_page=True)

    # Filter in place: the URL keeps the filter, the page is not reloaded.
    htmx_settled(page)
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Status").select_option("due")
    expect(page).to_have_url(re.compile(r"status=due"))
    htmx_settled(page)
    assert page.evaluate("window.__sameDocument") is True
    statuses = page.locator("#invoice-results tbody tr .badge").all_inner_texts()
    assert statuses and set(statuses) <= {"Awaiting payment", "Overdue"}, statuses

    link = page.locator("#invoice-results tbody tr th a").first
    number = link.inner_text().strip()
    assert re.fullmatch(r"INV-\d{4}-\d{5}", number), number
    link.click()
    expect(page.get_by_role("heading", name=f"Invoice {number}")).to_be_visible()
    expect(page.locator("table.invoice-lines tbody tr").first).to_be_visible()
    expect(page.locator(".invoice-totals__due")).to_contain_text("Outstanding")
    page.screenshot(path=f"/tmp/invoices-show-{size}.png", full_page=True)

    # A PDF takes WeasyPrint a few seconds on a busy machine: wait for the download itself, generously.
    with page.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.suggested_filename == f"{number}.pdf"
    with open(download.path(), "rb") as handle:
        body = handle.read()
    assert body.startswith(b"%PDF-")
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
    assert number in text and "Amount due" in text
    if size == "desktop":
        with open("/tmp/invoices-pdf.pdf", "wb") as out:  # for looking at it
            out.write(body)
    assert page_problems.all() == []
