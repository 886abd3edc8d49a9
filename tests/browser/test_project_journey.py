"""A project manager plans a phase that needs the customer's approval and asks the sponsor: in a real browser."""

from __future__ import annotations


from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD


def test_project_manager_plans_a_phase_and_asks_the_sponsor(new_page, page_problems, outbox):
    page = new_page()
    page.goto("/login")
    page.get_by_role("textbox", name="Email", exact=True).fill("carlos.martinez@techserv.com")
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Projects").click()
    page.get_by_role("link", name="Plant network refresh").click()
    expect(page.get_by_role("heading", name="Plant network refresh")).to_be_visible()

    form = page.locator("#new-phase")
    form.get_by_label("Phase name").fill("Wi-Fi survey of the warehouse")
    form.get_by_label("Budget ($)").fill("9000")  # 8,000 + 26,000 are planned of 42,000: 8,000 left
    project_start = page.locator("#start_date").input_value()  # from the plan form below
    page.locator("#new-start_date").fill(project_start)
    page.locator("#new-end_date").fill(page.locator("#planned_end_date").input_value())
    form.get_by_label("The customer's sponsor must approve it before it starts").check()
    form.get_by_role("button", name="Add phase").click()
    expect(page.locator("#new-phase .field__error")).to_contain_text(
        "may not exceed the project budget of $42,000.00: $8,000.00 is left")
    page.locator("#new-phase").get_by_label("Budget ($)").fill("8000")
    page.locator("#new-phase").get_by_role("button", name="Add phase").click()
    phase = page.locator("article.phase", has_text="Wi-Fi survey of the warehouse")
    expect(phase).to_contain_text("Needs approval, not asked yet")

    expect(phase.get_by_role("button", name="Start")).to_have_count(0)  # not before the customer approves it
    page.locator("article.phase", has_text="Wi-Fi survey of the warehouse").get_by_role(
        "button", name="Ask the customer to approve").click()
    expect(page.get_by_text("Approval requested from Robert Wilson.")).to_be_visible()
    expect(page.locator("article.phase", has_text="Wi-Fi survey of the warehouse")).to_contain_text(
        "Awaiting the customer's approval")
    assert outbox[-1].to == "robert.wilson@bouldermfg.com" and "Wi-Fi survey" in outbox[-1].subject
    assert [p for p in page_problems.all() if "status of 422" not in p] == []
