"""An account manager adds a customer, a billing contact whom she invites to the portal, a contract,
and renews it seeing the price change before confirming: in a real browser, with each slip's
message beside its field; the pages again at phone width."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, htmx_settled, sign_in

SCREENSHOTS = Path(__file__).resolve().parents[2] / "instance" / "screenshots"


def _link_in(mail) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", mail.body).group(1)


def test_account_manager_adds_a_customer_a_billing_contact_and_a_contract_then_renews_it(new_page, outbox,
                                                                                        page_problems):
    page = new_page()
    sign_in(page, "jessica.brown@techserv.com", PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Customers").click()
    expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()
    page.get_by_label("Search").fill("denver")
    htmx_settled(page)
    expect(page.locator("#customer-results")).to_contain_text("Denver Tech")
    page.get_by_role("link", name="Add customer").first.click()

    # A slip first: the rule is said beside its field, what was typed stays.
    page.get_by_label("Company name").fill("Kestrel Kitchens")
    page.get_by_label("Industry").fill("Hospitality")
    page.get_by_label("Account status").select_option(label="Active")
    page.get_by_label("Service tier").select_option(label="Professional")
    page.get_by_label("Health score").fill("1.5")
    page.get_by_role("button", name="Add customer").click()
    expect(page.locator("#account_health_score-error")).to_have_text(re.compile("The health score is from 0 to 1"))
    expect(page.get_by_label("Company name")).to_have_value("Kestrel Kitchens")
    page.get_by_label("Health score").fill("0.9")
    page.get_by_role("button", name="Add customer").click()
    expect(page.get_by_text("Kestrel Kitchens is a customer. Add its contacts next.")).to_be_visible()

    # A billing contact, then the portal invitation.
    expect(page.get_by_role("heading", name="Contacts of Kestrel Kitchens")).to_be_visible()
    expect(page.get_by_text("No contacts yet")).to_be_visible()
    page.get_by_label("First name").fill("Nora")
    page.get_by_label("Last name").fill("Quill")
    page.get_by_label("Email").fill("nora.quill@kestrel")
    page.get_by_label("Billing contact").check()
    page.get_by_role("button", name="Add contact").click()
    expect(page.locator("#email-error")).to_have_text(re.compile("Enter a valid email address"))
    page.get_by_label("Email").fill("nora.quill@kestrelkitchens.com")
    page.get_by_role("button", name="Add contact").click()
    expect(page.get_by_text("Nora Quill is a contact.")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("Nora Quill"))
    expect(row).to_contain_text("Billing")
    row.get_by_role("button", name=re.compile("Invite")).click()
    expect(page.get_by_text("Invitation sent to nora.quill@kestrelkitchens.com")).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("Nora Quill"))).to_contain_text("Invited")

    nora = new_page()
    nora.goto(_link_in(outbox[-1]))
    nora.get_by_role("textbox", name="New password", exact=True).fill("copper lantern meadow")
    nora.get_by_role("textbox", name="Repeat the new password").fill("copper lantern meadow")
    nora.get_by_role("button", name="Save the password").click()
    sign_in(nora, "nora.quill@kestrelkitchens.com", "copper lantern meadow")
    expect(nora.get_by_role("navigation", name="Main").get_by_role("link", name="Invoices")).to_be_visible()

    # A contract, with a slip: it ends before it starts.
    page.get_by_role("link", name="Contracts").click()
    expect(page.get_by_text("No contracts yet")).to_be_visible()
    page.get_by_role("link", name="New contract").first.click()
    page.get_by_label("Start date").fill("2026-01-01")
    page.get_by_label("End date").fill("2025-12-31")
    page.get_by_label("Monthly fee ($)").fill("2,000")
    page.get_by_label("Included hours a month").fill("15")
    page.get_by_label("Annual price increase (%)").fill("4")
    page.get_by_role("button", name="Make contract").click()
    expect(page.locator("#end_date-error")).to_have_text(re.compile("The contract must end after it starts"))
    page.get_by_label("End date").fill("2026-12-31")
    page.get_by_role("button", name="Make contract").click()
    made = page.get_by_text(re.compile(r"CON-2026-\d+ is made\."))
    expect(made).to_be_visible()
    number = re.search(r"CON-2026-\d+", made.inner_text()).group(0)
    expect(page.get_by_role("row", name=re.compile(number))).to_contain_text("$2,000.00")

    # Renew: the price change is shown before it is confirmed.
    page.get_by_role("link", name=f"Renew {number}").click()
    expect(page.get_by_role("heading", name=f"Renew {number}")).to_be_visible()
    renew_path = urlsplit(page.url).path
    expect(page.locator("#fee-change")).to_have_text("+$80.00 (4%)")
    expect(page.get_by_text("1 Jan 2027")).to_be_visible()
    page.get_by_role("button", name="Renew at $2,080.00 a month").click()
    renewed = page.get_by_text(re.compile(r"CON-2027-\d+ renews it from 1 Jan 2027\."))
    expect(renewed).to_be_visible()
    new_number = re.search(r"CON-2027-\d+", renewed.inner_text()).group(0)
    expect(page.get_by_role("row", name=re.compile(rf"^{new_number}\b"))).to_contain_text("$2,080.00")
    # The old contract now says who renews it, instead of offering Renew again.
    expect(page.get_by_role("row", name=re.compile(rf"^{number}\b"))).to_contain_text(f"Renewed by {new_number}")

    # The customer page links to it all; the pages at phone width.
    page.get_by_role("link", name="Kestrel Kitchens").first.click()
    expect(page.get_by_role("link", name="Edit customer")).to_be_visible()
    customer_path = urlsplit(page.url).path
    phone = new_page("phone")
    sign_in(phone, "jessica.brown@techserv.com", PASSWORD)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, path in (("customers", "/staff/customers"), ("customer", customer_path),
                       ("contacts", customer_path + "/contacts"), ("contracts", customer_path + "/contracts"),
                       ("new-contract", customer_path + "/contracts/new"), ("renew", renew_path)):
        phone.goto(path)
        htmx_settled(phone)
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 400, f"{name} scrolls sideways on a phone ({width}px)"
        phone.screenshot(path=str(SCREENSHOTS / f"crm-{name}-phone.png"), full_page=True)
    # The refused forms (422) are answered so on purpose.
    assert [p for p in page_problems.all() if "status of 422" not in p] == []
