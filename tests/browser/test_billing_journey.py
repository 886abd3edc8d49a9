"""Billing, from the account manager to the customer (issue 11), in real Chromium on the demo data.

Jessica Brown (account manager) bills this month for Peak Performance Fitness (its fee, which the
demo has not billed): she previews exactly the lines, makes the draft, adds a discount, sends it and
records a partial payment. Marcus Reed, Peak's billing contact, is emailed, finds it in the portal
and downloads the PDF: the document as it was sent, with the discount and the billing period.
Peak Performance is used by no other journey, so nothing another test reads changes.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

from playwright.sync_api import expect
from pypdf import PdfReader

from portal.services import clock
from tests.browser.conftest import DOWNLOAD_TIMEOUT_MS, htmx_settled, sign_in


def test_account_manager_bills_and_the_billing_contact_downloads(new_page, page_problems, outbox):
    today = clock.today()  # the business day (the demo's and the invoice's), not the machine's
    first = today.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    page = new_page("desktop")
    sign_in(page, "jessica.brown@techserv.com")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices").click()
    expect(page.get_by_role("heading", name="Invoices", exact=True)).to_be_visible()
    page.get_by_role("link", name="Bill a period").first.click()
    expect(page.get_by_role("heading", name="Bill a period")).to_be_visible()

    page.get_by_label("Customer").select_option(label="Peak Performance Fitness")
    page.get_by_label("First day").fill(first.isoformat())
    page.get_by_label("Last day").fill(last.isoformat())
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#invoice-preview")
    expect(preview).to_contain_text("Preview: Peak Performance Fitness")
    expect(preview.locator("tbody tr").first).to_contain_text(f"Monthly fee, essential plan, {first:%B %Y}")
    expect(preview.locator(".invoice-totals__total")).to_contain_text("$530.45")
    page.screenshot(path="/tmp/billing-preview.png", full_page=True)

    page.get_by_role("button", name="Make the draft").click()
    heading = page.get_by_role("heading", name=re.compile(r"Invoice INV-\d{4}-\d{5}"))
    expect(heading).to_be_visible()
    number = re.search(r"INV-\d{4}-\d{5}", heading.inner_text()).group(0)
    expect(page.locator(".page-header")).to_contain_text("Draft")

    page.get_by_label("Kind").select_option("discount")
    page.get_by_label("Description").fill("Loyalty discount")
    page.get_by_label("Quantity").fill("1")
    page.get_by_label("Amount each").fill("30.45")
    page.get_by_role("button", name="Add line").click()
    expect(page.locator(".invoice-totals__total")).to_contain_text("$500.00")

    page.get_by_role("button", name="Send to the customer").click()
    expect(page.locator(".page-header")).to_contain_text("Sent")
    page.get_by_label("Amount", exact=True).fill("200.00")
    page.get_by_label("Reference").fill("ACH 55120")
    page.get_by_role("button", name="Record payment").click()
    expect(page.locator("#payments-title ~ .table-wrap")).to_contain_text("ACH 55120")
    expect(page.get_by_role("definition").filter(has_text="$300.00")).to_be_visible()
    page.screenshot(path="/tmp/billing-invoice.png", full_page=True)
    htmx_settled(page)
    mails = [m for m in outbox if number in m.subject]
    assert [m.to for m in mails] == ["marcus.reed@peakfit.com"] and "$500.00" in mails[0].subject

    customer = new_page("phone")
    sign_in(customer, "marcus.reed@peakfit.com")
    customer.goto("/portal/invoices")
    customer.get_by_role("link", name=number).click()
    expect(customer.get_by_role("heading", name=f"Invoice {number}")).to_be_visible()
    expect(customer.locator(".invoice-totals__due")).to_contain_text("$300.00")
    expect(customer.locator("dl.facts")).to_contain_text("Billing period")
    with customer.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as download_info:
        customer.get_by_role("link", name="Download PDF").click()
    with open(download_info.value.path(), "rb") as handle:
        body = handle.read()
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
    assert number in text and "Loyalty discount" in text and "$500.00" in text
    assert f"billing period {first.day} {first:%b %Y} to {last.day} {last:%b %Y}".lower() in text.lower()
    assert page_problems.all() == []
