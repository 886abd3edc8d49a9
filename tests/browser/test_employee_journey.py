"""An admin hires a technician, invites them, changes their rate, later lets them go and hands their
tickets to a colleague, and reads each step in the audit log: in a real browser."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, htmx_settled, sign_in


def _link_in(mail) -> str:
    return re.search(r"https?://[^/\s]+(/\S+)", mail.body).group(1)


def _give_tickets(live_app, email: str, count: int) -> list[str]:
    """Meanwhile the new technician works some tickets (made here, so no demo ticket changes hands)."""
    import sqlalchemy as sa

    from portal.extensions import db
    from portal.models import Contact, Employee, SupportTicket
    from portal.services.numbering import next_number

    with live_app.app_context():
        s = db.session
        employee = s.scalar(sa.select(Employee).where(Employee.email == email))
        contact = s.scalar(sa.select(Contact).where(Contact.email == "mike.chen@denvertech.com"))
        numbers = []
        for title in ("Scanner on floor 2 offline", "New starter laptop setup")[:count]:
            now = datetime.now(UTC)
            ticket = SupportTicket(ticket_number=next_number(s, "ticket", now.date()), customer_id=contact.customer_id,
                                   contact_id=contact.contact_id, title=title, description="See title.",
                                   category="hardware", status="in_progress", created_at=now, assigned_at=now,
                                   first_response_at=now, assigned_employee_id=employee.employee_id)
            s.add(ticket)
            numbers.append(ticket.ticket_number)
        s.commit()
        s.remove()
    return numbers


def test_admin_hires_invites_reprices_lets_go_and_reads_it_all_in_the_audit_log(new_page, live_app, outbox,
                                                                                 page_problems):
    admin = new_page()
    sign_in(admin, "priya.natarajan@techserv.com", PASSWORD)
    admin.get_by_role("navigation", name="Main").locator("summary", has_text="Admin").click()  # the admins' menu
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Employees").click()
    expect(admin.get_by_role("heading", name="Employees", exact=True)).to_be_visible()
    admin.get_by_role("link", name="Add employee").click()

    # Hire, with one slip first: the rule is said beside its field.
    number = admin.get_by_label("Employee number").input_value()
    admin.get_by_label("First name").fill("Dana")
    admin.get_by_label("Last name").fill("Reyes")
    admin.get_by_label("Email").fill("dana.reyes@techserv.com")
    admin.get_by_label("Role").select_option(label="Technician")
    admin.get_by_label("Department").fill("Service desk")
    admin.get_by_label("Client rate ($ an hour)").fill("0")
    admin.get_by_label("Internal cost rate ($ an hour)").fill("52.50")
    admin.get_by_role("button", name="Add employee").click()
    expect(admin.locator("#hourly_rate_client-error")).to_have_text(re.compile("The client rate must be more than \\$0."))
    admin.get_by_label("Client rate ($ an hour)").fill("95")
    admin.get_by_role("button", name="Add employee").click()
    expect(admin.get_by_role("heading", name="Dana Reyes")).to_be_visible()
    expect(admin.get_by_text("Dana Reyes (" + number + ") is on the team")).to_be_visible()

    # Invite: the newcomer chooses a password and signs in.
    admin.get_by_role("button", name="Invite Dana").click()
    expect(admin.get_by_text("Invitation sent to dana.reyes@techserv.com")).to_be_visible()
    dana = new_page()
    dana.goto(_link_in(outbox[-1]))
    dana.get_by_role("textbox", name="New password", exact=True).fill("amber kettle harbour")
    dana.get_by_role("textbox", name="Repeat the new password").fill("amber kettle harbour")
    dana.get_by_role("button", name="Save the password").click()
    sign_in(dana, "dana.reyes@techserv.com", "amber kettle harbour")
    expect(dana.get_by_role("heading", name="Good to see you, Dana")).to_be_visible()

    # A raise: from now on, her time is billed at the new rate.
    admin.reload()
    expect(admin.get_by_text("Can sign in")).to_be_visible()
    admin.get_by_label("Client rate ($ an hour)").fill("105.00")
    admin.get_by_role("button", name="Save changes").click()
    expect(admin.get_by_text("Dana Reyes is saved.")).to_be_visible()
    expect(admin.get_by_label("Client rate ($ an hour)")).to_have_value("105")  # numbers shown plain (no trailing zeros), like every form

    # Months later she leaves, with two tickets open.
    tickets = _give_tickets(live_app, "dana.reyes@techserv.com", 2)
    admin.reload()
    expect(admin.get_by_text("2 open tickets")).to_be_visible()
    admin.get_by_label("Status").select_option(label="Inactive")
    admin.get_by_role("button", name="Save changes").click()
    expect(admin.get_by_text("Dana Reyes is inactive: signed out everywhere")).to_be_visible()
    dana.goto("/staff/")  # her open session is refused at once
    expect(dana).to_have_url(re.compile(r"/login"))
    admin.get_by_label("Every open ticket goes to").select_option(label="John Davis")
    admin.get_by_role("button", name="Hand over all").click()
    expect(admin.get_by_text("Handed over 2 open tickets.")).to_be_visible()
    expect(admin.get_by_text("No open tickets or projects.")).to_be_visible()

    # Every step, in the audit log: first what Priya did, then Dana's own history and her sign-ins.
    admin.get_by_role("navigation", name="Main").locator("summary", has_text="Admin").click()  # the admins' menu
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    admin.get_by_label("Who").select_option(label="Priya Natarajan")
    htmx_settled(admin)
    expect(admin.get_by_role("heading", name="What Priya Natarajan did")).to_be_visible()
    log = admin.locator("#audit-results")
    for words in (f"Added Dana Reyes ({number}) as technician, client rate $95.00",
                  "Sent an invitation to dana.reyes@techserv.com",
                  "Client rate: $95.00 → $105.00",
                  "Status: Active → Inactive; signed out of 1 open session",
                  "Handed over 2 open tickets to John Davis",
                  "Reassigned from Dana Reyes to John Davis"):
        expect(log.get_by_text(words, exact=False).first).to_be_visible()
    assert "actor=employee" in admin.url  # the filter is in the address, to share or come back to

    admin.goto("/staff/admin/employees?q=dana&status=any")
    admin.get_by_role("link", name="Dana Reyes").click()
    admin.get_by_role("link", name="History of this employee").click()
    expect(admin.get_by_role("heading", name=re.compile("History of employee Dana Reyes"))).to_be_visible()
    expect(admin.locator("#audit-results tbody tr")).to_have_count(4)  # hired, repriced, let go, work handed over
    admin.go_back()
    admin.get_by_role("link", name="Sign-in history").click()
    expect(admin.locator("#audit-results")).to_contain_text("Accepted the invitation and chose a password")
    expect(admin.locator("#audit-results")).to_contain_text("Signed in")

    admin.goto(f"/staff/admin/audit?object={tickets[0]}")
    expect(admin.locator("#audit-results")).to_contain_text("Reassigned from Dana Reyes to John Davis")
    expect(admin.locator("#audit-results")).to_contain_text("Priya Natarajan")
    # The refused rate (422) is answered so on purpose.
    assert [p for p in page_problems.all() if "status of 422" not in p] == []
