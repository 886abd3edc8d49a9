"""A contact checks the contract's usage this month and updates their phone and name: real Chromium, real server.

The contact is made here (one per viewport) for the demo customer with the most work not yet
invoiced this month, so no demo person another journey signs in as is changed.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import htmx_settled, sign_in


def make_contact(live_app, size: str):
    """A new contact with a login, for the demo customer with the most unbilled entries this month;
    returns its email and the usage the service reports for it."""
    import sqlalchemy as sa

    from portal.extensions import db
    from portal.models import Account, Contact, Customer
    from portal.services.auth import principal_for
    from portal.services.usage import contract_usage
    from portal.services.clock import today as _today
    from tests import factories as f

    email = f"usage.journey.{size}@example.com"
    with live_app.app_context(), live_app.test_request_context():
        today = _today()
        if db.session.scalar(sa.select(Contact).where(Contact.email == email)) is None:
            best = None
            for customer in db.session.scalars(sa.select(Customer).where(Customer.account_status == "active")):
                contact = f.make_contact_login(db.session, customer=customer, first_name="Jordan",
                                               last_name=f"Usage {size.title()}", email=f"probe.{size}.{customer.customer_id}@example.com")
                who = principal_for(db.session, db.session.scalar(
                    sa.select(Account.account_id).where(Account.contact_id == contact.contact_id)))
                usage = contract_usage(db.session, who, today=today)
                if usage.contract and (best is None or usage.unbilled_count > best[1]):
                    best = (customer, usage.unbilled_count)
            db.session.rollback()  # the probes were only to choose
            # A primary contact: the usage page lists every entry and its estimate to them.
            f.make_contact_login(db.session, customer=best[0], first_name="Jordan", last_name=f"Usage {size.title()}",
                                 email=email, phone="303 555 0100", is_primary_contact=True)
            db.session.commit()
        account_id = db.session.scalar(sa.select(Account.account_id).where(Account.email == email))
        usage = contract_usage(db.session, principal_for(db.session, account_id), today=today)
        if usage.unbilled_count == 0:
            # Early in a month (the 1st, before anyone logged time) the demo has no work in it yet:
            # a technician logs an hour today on one of the customer's tickets, as on any day.
            from portal.models import Employee, SupportTicket

            customer_id = db.session.scalar(sa.select(Contact.customer_id).where(Contact.email == email))
            ticket = db.session.scalar(sa.select(SupportTicket).where(SupportTicket.customer_id == customer_id)
                                       .order_by(SupportTicket.ticket_id)) \
                or f.make_ticket(db.session, db.session.get(Customer, customer_id), title="Backups to check")
            technician = db.session.scalar(sa.select(Employee).where(Employee.role == "technician")
                                           .order_by(Employee.employee_id))
            entry = f.make_time_entry(db.session, employee=technician, ticket=ticket, work_date=today,
                                      is_billable=True, approval_status="approved", description="Checked the backups.")
            assert entry.customer_id == customer_id
            db.session.commit()
            usage = contract_usage(db.session, principal_for(db.session, account_id), today=today)
        db.session.rollback()
        db.session.remove()
    return email, usage


def shoot(page: Page, name: str) -> None:
    # caret="initial": Playwright's default caret hiding leaves style="" on inputs, which htmx then copies onto
    # the swapped-in inputs, and the CSP refuses (a console error that only a screenshot causes).
    page.screenshot(path=f"/tmp/{name}.png", full_page=True, caret="initial")


def hours(value) -> str:
    from portal.web.formatting import hours as format_hours
    return format_hours(value)


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_contact_checks_usage_and_updates_the_profile(live_app, new_page, page_problems, size):
    email, usage = make_contact(live_app, size)
    assert usage.contract is not None and usage.unbilled_count > 0
    page = new_page(size)
    sign_in(page, email)

    # Contract usage, from the menu: the numbers are the service's.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Contract usage").click()
    expect(page.get_by_role("heading", name="Contract usage", level=1)).to_be_visible()
    stats = page.locator(".usage__stats")
    expect(stats.locator(".stat", has_text="Included")).to_contain_text(hours(usage.included))
    expect(stats.locator(".stat", has_text="Used (approved)")).to_contain_text(hours(usage.approved))
    expect(stats.locator(".stat", has_text="Waiting for approval")).to_contain_text(hours(usage.pending))
    if usage.over > 0:
        expect(stats.locator(".stat", has_text="Over the plan")).to_contain_text(hours(usage.over))
    else:
        expect(stats.locator(".stat", has_text="Left")).to_contain_text(hours(usage.left))
    expect(page.locator("svg.usage-bar")).to_be_visible()
    label = page.locator("#usage-bar-text").inner_text()
    assert hours(usage.approved) in label and hours(usage.pending) in label
    expect(page.get_by_text(f"Estimate: ${usage.estimate:,.2f}")).to_be_visible()
    rows = page.locator(".usage__table tbody tr")
    expect(rows).to_have_count(min(usage.unbilled_count, 50))
    shoot(page, f"usage-{size}")

    # The previous month, in place: the URL keeps it, the page is not reloaded.
    htmx_settled(page)
    page.evaluate("window.__sameDocument = true")
    previous = usage.previous_month
    page.get_by_role("link", name=previous.strftime("%B")).click()
    expect(page).to_have_url(re.compile(rf"/portal/usage\?month={previous:%Y-%m}$"))
    expect(page.locator(".page-header p")).to_contain_text(previous.strftime("%B %Y"))
    assert page.evaluate("window.__sameDocument") is True
    # A month typed wrong is answered beside the picker.
    page.goto("/portal/usage?month=2099-01")
    expect(page.locator("#usage-month-error")).to_contain_text("no usage yet for January 2099")
    shoot(page, f"usage-bad-month-{size}")

    # The profile, from the user menu: a wrong phone is refused beside the field, then saved in place.
    page.get_by_role("link", name="Profile").click()
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()
    htmx_settled(page)
    page.evaluate("window.__sameDocument = true")
    page.get_by_label("Phone", exact=True).fill("call me at noon")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator("#profile-phone-error")).to_contain_text("in digits")
    shoot(page, f"profile-error-{size}")
    htmx_settled(page)
    page.get_by_label("Phone", exact=True).fill("+1 720 555 0142")
    page.get_by_label("First name").fill("Casey")
    page.get_by_label("Text message (SMS)").check()
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator("#profile-communication_preference-error")).to_contain_text("mobile number")
    htmx_settled(page)
    page.get_by_label("Mobile").fill("(720) 555-0199")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator(".toast", has_text="Your profile is saved.")).to_be_visible()
    expect(page.locator(".topbar__user strong")).to_have_text(f"Casey Usage {size.title()}")
    assert page.evaluate("window.__sameDocument") is True
    shoot(page, f"profile-{size}")

    page.reload()
    expect(page.get_by_label("Phone", exact=True)).to_have_value("+1 720 555 0142")
    expect(page.get_by_label("Text message (SMS)")).to_be_checked()
    expect(page.locator(".topbar__user strong")).to_have_text(f"Casey Usage {size.title()}")

    # The password page, from the profile, keeps the portal's menu.
    page.get_by_role("link", name="Change password").click()
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Contract usage")).to_be_visible()
    shoot(page, f"profile-password-{size}")
    problems = [p for p in page_problems.all() if "status of 422" not in p]
    assert problems == [], "\n".join(problems)
