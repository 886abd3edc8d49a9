"""The staff filters' customer picker (queue, invoices, approvals): typing refills the list in place, and
choosing filters the results. Real Chromium, real server: a filter form's hx-swap="outerHTML" and
hx-push-url are inherited by the search box unless it sets its own (it replaced the list with nothing)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import htmx_settled, sign_in


def test_typing_refills_the_customer_list_and_choosing_filters_the_queue(new_page, page_problems):
    page = new_page("desktop")
    sign_in(page, "amanda.lee@techserv.com")
    page.goto("/staff/tickets/")
    htmx_settled(page)
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Find a customer for the list below").fill("boulder")
    customer = page.locator("#f-customer")
    expect(customer.locator("option")).to_have_count(2)  # "Any customer" and the one that matches
    expect(customer.locator("option").nth(1)).to_have_text("Boulder Manufacturing Co")
    assert re.search(r"/staff/tickets/$", page.url), page.url  # refilling the list is no navigation
    customer.select_option(label="Boulder Manufacturing Co")
    expect(page).to_have_url(re.compile(r"customer_id=\d+"))
    rows = page.locator("#queue-results tbody tr")
    expect(rows.first).to_be_visible()
    for text in rows.locator(".queue__customer").all_inner_texts():
        assert text.strip() == "Boulder Manufacturing Co"
    assert page.evaluate("window.__sameDocument") is True
    page.get_by_label("Find a customer for the list below").fill("zzz")
    expect(customer.locator("option").nth(1)).to_have_text("Boulder Manufacturing Co")  # the chosen one stays
    expect(customer.locator("option")).to_have_count(2)  # nothing else matches; the chosen one is kept
