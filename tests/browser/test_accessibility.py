"""axe-core over every page of every persona of the demo, at desktop and phone width.

axe-core (npm's `axe-core`, vendored in tests/browser/vendor/axe-core, test-only) is evaluated in
each page with Playwright (evaluated code is not subject to the page's CSP) and `axe.run(document)`
reports what it finds. Any serious or critical violation fails the test, named by page and rule.
Desktop runs in the light theme and the phone in the dark one (`prefers-color-scheme`), so both
themes' colours are checked on every page.

`PAGES` lists every page (GET route answering HTML) of the app; a new page without a row fails
`test_every_page_is_checked`, as a new route without a row fails the permission matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD, SIZES, TIMEOUT_MS, htmx_settled, sign_in

AXE = (Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
FAILING_IMPACTS = ("serious", "critical")

# The demo's people, one per persona of DESIGN.md ("Who uses it").
PERSONAS = {
    "anonymous": None,
    "contact": "mike.chen@denvertech.com",
    "primary contact": "robert.wilson@bouldermfg.com",
    "billing contact": "karen.holt@denvertech.com",
    "sponsor": "sarah.johnson@denvertech.com",  # Denver's phase awaits this sponsor's approval
    "technician": "amanda.lee@techserv.com",
    "senior technician": "john.davis@techserv.com",
    "project manager": "carlos.martinez@techserv.com",
    "account manager": "jessica.brown@techserv.com",
    "admin": "priya.natarajan@techserv.com",
}

# GET routes that are no page of their own: files, fragments for htmx, redirects, the health check.
NOT_PAGES = {
    "static": "files",
    "main.home": "a redirect to the person's home",
    "main.healthz": "JSON",
    "main.readyz": "JSON",
    "auth.verify_second_factor": "only during a two-factor sign-in (redirects otherwise)",
    "portal.download_attachment": "a download",
    "tickets.download_attachment": "a download",
    "portal.invoice_pdf": "a PDF",
    "tickets.customer_picker": "an htmx fragment of <option>s",
    "staff.customer_filter_options": "an htmx fragment of <option>s",
    "tickets.contact_picker": "an htmx fragment of <option>s",
    "time.work_picker": "an htmx fragment of <option>s",
    "admin.export_audit_log": "a CSV download",
    "invoices.invoice_pdf": "a PDF",
    **{f"reports.{name.replace('-', '_')}_csv": "a CSV download" for name in (
        "mrr", "renewals", "utilization", "sla", "profitability", "overdue", "budget-burn")},
}


@dataclass(frozen=True)
class Ids:
    """Rows of the demo data that the persona may open (None: this persona has none)."""

    ticket: int | None = None
    invoice: int | None = None
    project: int | None = None
    customer: int | None = None
    entry: tuple[int, str] | None = None  # (own editable time entry, its week's Monday)
    reset_token: str | None = None
    webhook: int | None = None  # a webhook subscription with deliveries (staff; only admins may open it)
    employee: int | None = None  # an employee with open work (the admin pages)
    invoice_number: str | None = None  # an invoice whose history the audit log shows
    staff_invoices: tuple[int, ...] = ()  # a draft and a sent invoice (the staff's invoice pages)
    run: int | None = None  # a month-end run (staff)
    crm_contact: int | None = None  # a contact of `customer` (the CRM pages)
    crm_contract: int | None = None  # a contract of `customer` (the CRM pages)


# endpoint -> the path(s) to open, from the persona's ids; None: not for this persona.
PAGES = {
    "auth.login": lambda ids, who: ["/login"] if who is None else None,
    "auth.forgot_password": lambda ids, who: ["/password/forgot"] if who is None else None,
    "auth.reset_password": lambda ids, who: [f"/password/reset/{ids.reset_token}", "/password/reset/no-such-link"]
    if who is None else None,
    "auth.accept_invitation": lambda ids, who: ["/invitation/no-such-link"] if who is None else None,
    "account.change_password": lambda ids, who: ["/account/password"] if who else None,
    "account.two_factor": lambda ids, who: ["/account/two-factor"] if who and who.endswith("@techserv.com") else None,
    "portal.home": lambda ids, who: ["/portal/"],
    "portal.tickets": lambda ids, who: ["/portal/tickets", "/portal/tickets?status=all&q=zzzz-nothing"],
    "portal.new_ticket": lambda ids, who: ["/portal/tickets/new"],
    "portal.show_ticket": lambda ids, who: [f"/portal/tickets/{ids.ticket}"] if ids.ticket else None,
    "portal.usage": lambda ids, who: ["/portal/usage"],
    "portal.profile": lambda ids, who: ["/portal/profile"],
    "portal.invoices": lambda ids, who: ["/portal/invoices"],
    "portal.show_invoice": lambda ids, who: [f"/portal/invoices/{ids.invoice}"] if ids.invoice else None,
    "portal.projects": lambda ids, who: ["/portal/projects"],
    "portal.show_project": lambda ids, who: [f"/portal/projects/{ids.project}"] if ids.project else None,
    "staff.home": lambda ids, who: ["/staff/"],
    "staff.people": lambda ids, who: ["/staff/people", "/staff/people?kind=employees"],
    "staff.security_settings": lambda ids, who: ["/staff/security"],
    "system.system_status": lambda ids, who: ["/staff/system/"],
    "staff.show_customer": lambda ids, who: [f"/staff/customers/{ids.customer}"] if ids.customer else None,
    "tickets.queue": lambda ids, who: ["/staff/tickets/"],
    "tickets.show_ticket": lambda ids, who: [f"/staff/tickets/{ids.ticket}"] if ids.ticket else None,
    "tickets.new_ticket": lambda ids, who: ["/staff/tickets/new"],
    "time.timesheet": lambda ids, who: ["/staff/timesheet"] + (
        [f"/staff/timesheet?week={ids.entry[1]}&edit={ids.entry[0]}"] if ids.entry else []),
    "time.approvals": lambda ids, who: ["/staff/approvals"],
    "projects.list_projects": lambda ids, who: ["/staff/projects/"],
    "projects.new_project": lambda ids, who: ["/staff/projects/new"],
    "projects.show_project": lambda ids, who: [f"/staff/projects/{ids.project}"] if ids.project else None,
    "api.docs": lambda ids, who: ["/api/docs"],
    "integrations.api_clients_page": lambda ids, who: ["/staff/api-clients"],
    "integrations.webhooks_page": lambda ids, who: ["/staff/webhooks"],
    "integrations.show_webhook": lambda ids, who: [f"/staff/webhooks/{ids.webhook}"] if ids.webhook else None,
    "admin.list_employees": lambda ids, who: ["/staff/admin/employees", "/staff/admin/employees?q=zzzz-nobody"],
    "admin.new_employee": lambda ids, who: ["/staff/admin/employees/new"],
    "admin.show_employee": lambda ids, who: [f"/staff/admin/employees/{ids.employee}"] if ids.employee else None,
    "mail_in.unmatched_mail": lambda ids, who: ["/staff/mail/unmatched"],
    "mail_in.holidays": lambda ids, who: ["/staff/admin/holidays", "/staff/admin/holidays?year=2031"],
    "admin.audit_log": lambda ids, who: ["/staff/admin/audit", f"/staff/admin/audit?table=support_tickets&row_id={ids.ticket}",
                                         f"/staff/admin/audit?object={ids.invoice_number}",
                                         "/staff/admin/audit?object=TKT-1999-000001"] if ids.ticket else None,
    "invoices.list_invoices": lambda ids, who: ["/staff/invoices/", "/staff/invoices/?q=zzzz-nobody&status=paid"],
    "invoices.new_invoice": lambda ids, who: ["/staff/invoices/new"] + (
        [f"/staff/invoices/new?customer_id={ids.customer}"] if ids.customer else []),
    "invoices.show_invoice": lambda ids, who: [f"/staff/invoices/{i}" for i in ids.staff_invoices] or None,
    "invoices.month_end": lambda ids, who: ["/staff/invoices/month-end"],
    "invoices.show_run": lambda ids, who: [f"/staff/invoices/month-end/{ids.run}"] if ids.run else None,
    "invoices.export_page": lambda ids, who: ["/staff/invoices/export"],
    "customers.list_customers": lambda ids, who: ["/staff/customers", "/staff/customers?q=zzzz-nobody"],
    "customers.new_customer": lambda ids, who: ["/staff/customers/new"],
    "customers.edit_customer": lambda ids, who: [f"/staff/customers/{ids.customer}/edit"] if ids.customer else None,
    "customers.list_contacts": lambda ids, who: [f"/staff/customers/{ids.customer}/contacts"] if ids.customer else None,
    "customers.edit_contact": lambda ids, who: [f"/staff/customers/{ids.customer}/contacts/{ids.crm_contact}"]
    if ids.crm_contact else None,
    "customers.list_contracts": lambda ids, who: [f"/staff/customers/{ids.customer}/contracts"] if ids.customer else None,
    "customers.new_contract": lambda ids, who: [f"/staff/customers/{ids.customer}/contracts/new"] if ids.customer else None,
    "customers.edit_contract": lambda ids, who: [f"/staff/customers/{ids.customer}/contracts/{ids.crm_contract}"]
    if ids.crm_contract else None,
    "customers.renewal_preview": lambda ids, who: [f"/staff/customers/{ids.customer}/contracts/{ids.crm_contract}/renew"]
    if ids.crm_contract else None,
}
# The reports, each as it opens and with a filter the reader changed.
PAGES["reports.index"] = lambda ids, who: ["/staff/reports/"]
PAGES.update({
    "reports.mrr": lambda ids, who: ["/staff/reports/mrr", "/staff/reports/mrr?months=3"],
    "reports.renewals": lambda ids, who: ["/staff/reports/renewals", "/staff/reports/renewals?days=365"],
    "reports.utilization": lambda ids, who: ["/staff/reports/utilization"],
    "reports.sla": lambda ids, who: ["/staff/reports/sla", "/staff/reports/sla?start=2026-01-01&end=2026-12-31"],
    "reports.profitability": lambda ids, who: ["/staff/reports/profitability"],
    "reports.overdue": lambda ids, who: ["/staff/reports/overdue", "/staff/reports/overdue?stage=Overdue"],
    "reports.budget_burn": lambda ids, who: ["/staff/reports/budget-burn", "/staff/reports/budget-burn?over=1"],
})
STAFF_AREAS = ("/staff/", "/account/two-factor")
PORTAL_AREA = "/portal/"


def test_every_page_is_checked(live_app):
    # The REST API answers JSON (its one page, the reference at /api/docs, is in PAGES).
    gets = {rule.endpoint for rule in live_app.url_map.iter_rules() if "GET" in rule.methods
            and (not rule.endpoint.startswith("api.") or rule.endpoint == "api.docs")}
    assert gets - set(NOT_PAGES) == set(PAGES), "add the new page to PAGES (or, if it is no page, to NOT_PAGES)"


def _demo_webhook(s) -> int:
    """A subscription with a delivered and a dead delivery and their attempts (the demo data has none).

    Disabled: the live server's worker runs for the whole test session, and an active subscription
    would have it deliver (and retry for hours) every ticket the later journeys open.
    """
    import sqlalchemy as sa

    from portal.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

    found = s.scalar(sa.select(WebhookSubscription.subscription_id).limit(1))
    if found:
        return found
    subscription = WebhookSubscription(url="https://hooks.example.com/techserv", event_types=["ticket.created"],
                                       secret="whsec_demo", description="Demo receiver", is_active=False,
                                       disabled_at=datetime.now(UTC), disabled_reason="Every delivery failed.")
    s.add(subscription)
    s.flush()
    now = datetime.now(UTC)
    for event_id, status, code in ((1, "delivered", 200), (2, "dead", 503)):
        delivery = WebhookDelivery(subscription_id=subscription.subscription_id, event_id=event_id,
                                   event_type="ticket.created", status=status, attempts=1, last_response_status=code,
                                   body='{"id":"evt_%d","type":"ticket.created","data":{}}' % event_id)
        s.add(delivery)
        s.flush()
        s.add(WebhookAttempt(delivery_id=delivery.delivery_id, attempt_number=1, started_at=now, duration_ms=42,
                             response_status=code, response_excerpt="ok"))
    s.commit()
    return subscription.subscription_id


def _demo_run(s) -> int:
    """A finished month-end run (the demo has none): its page shows the summary."""
    import sqlalchemy as sa

    from portal.models import InvoiceRun

    found = s.scalar(sa.select(InvoiceRun.run_id).order_by(InvoiceRun.run_id).limit(1))
    if found:
        return found
    run = InvoiceRun(period_start=datetime(2020, 1, 1).date(), period_end=datetime(2020, 1, 31).date(),
                     status="done", started_by="Jessica Brown", finished_at=datetime.now(UTC))
    s.add(run)
    s.commit()
    return run.run_id


def _ids_for(live_app, email: str | None) -> Ids:
    """The rows this persona opens, read from the demo data (the same database the browser uses)."""
    import sqlalchemy as sa

    from portal.extensions import db
    from portal.models import (
        Account,
        Contact,
        Employee,
        Invoice,
        Project,
        SupportTicket,
        TimeEntry,
    )
    from portal.services import auth
    from portal.services.timesheets import monday_of

    with live_app.app_context():
        s = db.session
        try:
            if email is None:
                account = s.scalar(sa.select(Account).where(Account.email == "jennifer@mvdental.com"))
                token = auth.issue_link_token(s, account, "password_reset", secret_key=live_app.config["SECRET_KEY"],
                                              now=datetime.now(UTC))
                s.commit()
                return Ids(reset_token=token)
            contact = s.scalar(sa.select(Contact).where(Contact.email == email))
            if contact is not None:
                own = [SupportTicket.customer_id == contact.customer_id]
                if not contact.is_primary_contact:
                    own.append(SupportTicket.contact_id == contact.contact_id)
                return Ids(
                    ticket=s.scalar(sa.select(SupportTicket.ticket_id).where(*own)
                                    .order_by(SupportTicket.last_activity_at.desc()).limit(1)),
                    invoice=s.scalar(sa.select(Invoice.invoice_id).where(
                        Invoice.customer_id == contact.customer_id, Invoice.invoice_status != "draft")
                        .order_by(Invoice.invoice_id.desc()).limit(1)),
                    project=s.scalar(sa.select(Project.project_id).where(Project.customer_id == contact.customer_id)
                                     .order_by(Project.project_id).limit(1)),
                )
            employee = s.scalar(sa.select(Employee).where(Employee.email == email))
            entry = s.execute(sa.select(TimeEntry.entry_id, TimeEntry.work_date).where(
                TimeEntry.employee_id == employee.employee_id, TimeEntry.approval_status != "approved")
                .order_by(TimeEntry.work_date.desc()).limit(1)).first()
            return Ids(
                employee=s.scalar(sa.select(Employee.employee_id).where(Employee.employee_number == "EMP002")),
                invoice_number=s.scalar(sa.select(Invoice.invoice_number).where(Invoice.invoice_status == "paid")
                                        .order_by(Invoice.invoice_id).limit(1)),
                ticket=s.scalar(sa.select(SupportTicket.ticket_id).where(SupportTicket.status != "closed")
                                .order_by(SupportTicket.ticket_id).limit(1)),
                project=s.scalar(sa.select(Project.project_id).order_by(Project.project_id).limit(1)),
                customer=s.scalar(sa.select(SupportTicket.customer_id).order_by(SupportTicket.ticket_id).limit(1)),
                entry=(entry.entry_id, monday_of(entry.work_date).isoformat()) if entry else None,
                webhook=_demo_webhook(s),
                staff_invoices=tuple(i for i in (
                    s.scalar(sa.select(Invoice.invoice_id).where(Invoice.invoice_status == status)
                             .order_by(Invoice.invoice_id).limit(1)) for status in ("draft", "sent")) if i),
                run=_demo_run(s),
                **_crm_ids(s),
            )
        finally:
            s.remove()


def _crm_ids(s) -> dict:
    """A contact and a contract of the customer staff open (the first ticket's), for the CRM pages."""
    import sqlalchemy as sa

    from portal.models import Contact, ServiceContract, SupportTicket

    customer = s.scalar(sa.select(SupportTicket.customer_id).order_by(SupportTicket.ticket_id).limit(1))
    return {"crm_contact": s.scalar(sa.select(Contact.contact_id).where(Contact.customer_id == customer)
                                    .order_by(Contact.contact_id).limit(1)),
            "crm_contract": s.scalar(sa.select(ServiceContract.contract_id).where(ServiceContract.customer_id == customer)
                                     .order_by(ServiceContract.start_date.desc()).limit(1))}


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.evaluate(AXE)
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' ' + (n.failureSummary || '').split('\\n').slice(1, 2).join('')),
        }));
    }""")
    return [v for v in found if v["impact"] in FAILING_IMPACTS]


def _report(where: str, violations: list[dict]) -> list[str]:
    return [f"{where}: {v['id']} ({v['impact']}): {v['help']} -- " + " | ".join(v["nodes"]) for v in violations]


def _paths(ids: Ids, email: str | None) -> list[str]:
    paths = []
    for endpoint, build in PAGES.items():
        found = build(ids, email)
        if not found:
            continue
        for path in found:
            staff_page = path.startswith(STAFF_AREAS)
            portal_page = path.startswith(PORTAL_AREA)
            if email is None and (staff_page or portal_page):
                continue
            if email and email.endswith("@techserv.com") and portal_page:
                continue
            if email and not email.endswith("@techserv.com") and staff_page:
                continue
            paths.append(path)
    return paths


@pytest.mark.parametrize("size", ["desktop", "phone"])
@pytest.mark.parametrize("persona", list(PERSONAS))
def test_no_serious_accessibility_violations(chromium, live_server, live_app, persona, size):
    email = PERSONAS[persona]
    ids = _ids_for(live_app, email)
    context = chromium.new_context(base_url=live_server, color_scheme="light" if size == "desktop" else "dark",
                                   **SIZES[size])
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        if email:
            sign_in(page, email, PASSWORD)
            # signed in: a contact's bar shows Sign out, a staff member's name opens the menu holding it
            expect(page.get_by_role("button", name="Sign out").or_(page.locator("summary.topbar__account"))).to_be_visible()
        problems, checked = [], []
        for path in _paths(ids, email):
            response = page.goto(path)
            status = response.status if response else 0
            if status == 403:
                continue  # not this persona's page (the permission matrix tests who may open what)
            if status not in (200, 404) or (status == 404 and "no-such" not in path):
                problems.append(f"{persona} {size} {path}: answered {status}")
                continue
            if path.startswith("/api/"):  # the API reference: no htmx; its script lists the endpoints
                page.wait_for_function("() => document.readyState === 'complete'"
                                       " && !!document.querySelector('#endpoint-list section')")
            else:
                htmx_settled(page)
            checked.append(path)
            problems += _report(f"{persona} {size} {path}", axe_violations(page))
        if email is None:
            # The sign-in page as it answers a wrong password: the error and the fields marked invalid.
            page.goto("/login")
            page.get_by_role("textbox", name="Email", exact=True).fill("nobody@example.com")
            page.get_by_role("textbox", name="Password", exact=True).fill("wrong password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_be_visible()
            checked.append("/login (refused)")
            problems += _report(f"{persona} {size} /login (refused)", axe_violations(page))
        assert len(checked) >= 3, f"{persona} opened too few pages to mean anything: {checked}"
        assert problems == [], "\n" + "\n".join(problems)
    finally:
        context.close()


BADGE_AND_CHIP = r"\.(badge|chip)--([a-z_-]+)"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_badge_and_chip_reads_at_aa_contrast(new_page, scheme):
    """Every badge and chip variant of the stylesheet, on a card and on the page, meets 4.5:1 (pages
    show only the variants their data has; this shows them all)."""
    import re

    css = (Path(__file__).resolve().parents[2] / "static" / "css" / "portal.css").read_text(encoding="utf-8")
    variants = sorted(set(re.findall(BADGE_AND_CHIP, css)))
    assert len(variants) > 30, variants
    page = new_page()
    page.emulate_media(color_scheme=scheme)
    page.goto("/login")
    page.evaluate("""variants => {
        const main = document.getElementById('main');
        main.replaceChildren();
        for (const holder of [main, Object.assign(document.createElement('div'), {className: 'card'})]) {
            for (const [kind, name] of variants) {
                const el = document.createElement('span');
                el.className = `${kind} ${kind}--${name}`;
                el.textContent = `${kind} ${name}`;
                holder.appendChild(el);
            }
            if (holder !== main) main.appendChild(holder);
        }
    }""", [list(v) for v in variants])
    page.evaluate(AXE)
    found = page.evaluate("""async () => {
        const r = await axe.run('#main', {runOnly: ['color-contrast']});
        return r.violations.flatMap(v => v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary));
    }""")
    assert found == []
