"""A new user is invited, sets a password, signs in, and later resets it: in a real browser."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, sign_in


def _link_in(mail) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", mail.body).group(1)


def test_forgotten_password_reset_in_the_browser(new_page, page_problems, outbox, tmp_path):
    person = new_page()
    person.goto("/password/forgot")
    person.get_by_role("textbox", name="Email").fill("billing@mvdental.com")
    person.get_by_role("button", name="Send the link").click()
    expect(person.get_by_text("If that address belongs to a login")).to_be_visible()
    mail = outbox[-1]
    assert mail.to == "billing@mvdental.com"
    person.goto(_link_in(mail))
    expect(person.get_by_role("heading", name="Choose a new password")).to_be_visible()
    person.get_by_role("textbox", name="New password", exact=True).fill("password1")
    person.get_by_role("textbox", name="Repeat the new password").fill("password1")
    person.get_by_role("button", name="Save the password").click()
    expect(person.get_by_text("very common password")).to_be_visible()  # the reason, beside the field
    person.get_by_role("textbox", name="New password", exact=True).fill("teal orchard compass")
    person.get_by_role("textbox", name="Repeat the new password").fill("teal orchard compass")
    person.get_by_role("button", name="Save the password").click()
    expect(person.get_by_text("Your password is changed")).to_be_visible()
    sign_in(person, "billing@mvdental.com", "teal orchard compass")
    expect(person).to_have_url(re.compile(r"/portal/$"))
    person.goto(_link_in(mail))  # signed in: the link's page says so and signs nobody out
    expect(person.get_by_role("heading", name=re.compile("You are signed in as"))).to_be_visible()
    person.get_by_role("button", name="Sign out").click()
    person.goto(_link_in(mail))
    expect(person.get_by_text("This link has expired or was already used")).to_be_visible()
    # The refused weak password (422) and the used-up link (404) are answered so on purpose.
    assert [p for p in page_problems.all() if "status of 422" not in p and "status of 404" not in p] == []


def test_admin_invites_a_new_employee_who_sets_a_password_and_signs_in(new_page, live_app, outbox, page_problems):
    from portal.extensions import db
    from portal.models import Employee

    with live_app.app_context():
        from datetime import date
        from decimal import Decimal

        db.session.add(Employee(employee_number="EMP900", first_name="Noor", last_name="Haddad",
                                email="noor.haddad@techserv.com", role="technician", hire_date=date(2026, 11, 2),
                                hourly_rate_internal=Decimal("55.00"), hourly_rate_client=Decimal("100.00")))
        db.session.commit()
        db.session.remove()

    admin = new_page()
    sign_in(admin, "priya.natarajan@techserv.com", PASSWORD)
    admin.goto("/staff/people?kind=employees")
    row = admin.get_by_role("row", name=re.compile("Noor Haddad"))
    expect(row).to_contain_text("No login")
    row.get_by_role("button", name="Invite").click()
    expect(admin.get_by_text("Invitation sent to noor.haddad@techserv.com")).to_be_visible()
    expect(admin.get_by_role("row", name=re.compile("Noor Haddad"))).to_contain_text("Invited")

    newcomer = new_page("phone")
    newcomer.goto(_link_in(outbox[-1]))
    expect(newcomer.get_by_role("heading", name="Welcome: choose your password")).to_be_visible()
    newcomer.get_by_role("textbox", name="New password", exact=True).fill("lantern river quartz")
    newcomer.get_by_role("textbox", name="Repeat the new password").fill("lantern river quartz")
    newcomer.get_by_role("button", name="Save the password").click()
    expect(newcomer.get_by_text("Your login is ready")).to_be_visible()
    sign_in(newcomer, "noor.haddad@techserv.com", "lantern river quartz")
    expect(newcomer).to_have_url(re.compile(r"/staff/$"))
    expect(newcomer.get_by_role("heading", name="Good to see you, Noor")).to_be_visible()
    assert page_problems.all() == []
