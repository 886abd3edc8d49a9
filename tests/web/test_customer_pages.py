"""The staff's customer pages (/staff/customers): the list, a customer's form, its contacts (with the
portal invitation) and contracts (with the renewal), as account managers use them: every rule's
message beside its field (422), a stale form refused (409), another customer's row a 404, a fixed
number of statements per page, and the audit rows every change leaves."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
import sqlalchemy as sa

from portal.models import AuditEvent, Contact, Customer, ServiceContract
from tests import factories as f
from tests.conftest import count_queries


@pytest.fixture
def manager(browser, session):
    employee = f.make_staff(session, role="account_manager", first_name="Jessica", last_name="Brown")
    browser.sign_in(employee.email)
    return employee


def _customer_form(customer: Customer | None = None, **kw) -> dict:
    n = f._n()
    values = {"company_name": f"Acme {n}", "industry": "Retail", "company_size": "small", "service_tier": "essential",
              "account_status": "active", "account_manager_id": "", "primary_contact_email": f"office{n}@acme.com",
              "account_health_score": "0.8", "tax_id": "", "timezone": "America/Denver", "billing_address": "",
              "service_address": ""}
    if customer is not None:
        values.update({name: str(getattr(customer, name) if getattr(customer, name) is not None else "")
                       for name in values})
        values["updated_at"] = customer.updated_at.isoformat()
    values.update(kw)
    return values


def _audit(session, action: str, table: str, row_id: int) -> list[AuditEvent]:
    return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action, AuditEvent.table_name == table,
                                                            AuditEvent.row_id == row_id)))


def _made_before_the_last_change(row) -> str:
    """The stamp of a form made before someone else's save (the test's one transaction keeps now() still,
    and the trigger sets updated_at to it, so the older form is the one that shows the race)."""
    return (row.updated_at - timedelta(minutes=1)).isoformat()


# --- the list --------------------------------------------------------------------------------

def test_the_list_searches_names_and_contact_emails_and_filters(browser, session, manager):
    mine = f.make_customer(session, company_name="Quokka Dental", account_status="active", service_tier="enterprise",
                           account_manager_id=manager.employee_id)
    other = f.make_customer(session, company_name="Quokka Legal", account_status="prospect")
    f.make_contact(session, customer=other, email="zed@wombat-mail.com")
    body = browser.get("/staff/customers?q=quokka").get_data(as_text=True)
    assert "Quokka Dental" in body and "Quokka Legal" in body
    body = browser.get("/staff/customers?q=wombat-mail").get_data(as_text=True)
    assert "Quokka Legal" in body and "Quokka Dental" not in body
    body = browser.get(f"/staff/customers?q=quokka&manager={manager.employee_id}").get_data(as_text=True)
    assert "Quokka Dental" in body and "Quokka Legal" not in body
    body = browser.get("/staff/customers?q=quokka&status=prospect").get_data(as_text=True)
    assert "Quokka Legal" in body and "Quokka Dental" not in body
    body = browser.get("/staff/customers?q=quokka&tier=enterprise&manager=").get_data(as_text=True)
    assert "Quokka Dental" in body and "Quokka Legal" not in body
    body = browser.get("/staff/customers?q=quokka&manager=none").get_data(as_text=True)
    assert "Quokka Legal" in body and "Quokka Dental" not in body
    fragment = browser.client.get("/staff/customers?q=quokka", headers={"HX-Request": "true"})
    text = fragment.get_data(as_text=True)
    assert "<html" not in text and 'id="customer-results"' in text and "HX-Request" in fragment.headers["Vary"]
    assert "No customers match" in browser.get("/staff/customers?q=nothing-like-this").get_data(as_text=True)
    assert mine.customer_id


def test_a_bad_filter_is_a_message_not_a_500(browser, session, manager):
    refused = browser.get("/staff/customers?status=bankrupt&manager=x")
    assert refused.status_code == 422
    assert "Choose a status from the list." in refused.get_data(as_text=True)


def test_the_list_pages_and_costs_the_same_statements_for_three_or_sixty(browser, session, manager):
    load = lambda: browser.get("/staff/customers?q=Paging")  # noqa: E731
    for i in range(3):
        f.make_customer(session, company_name=f"Paging {i:03d}")
    load()
    few = count_queries(session, load)
    for i in range(3, 60):
        customer = f.make_customer(session, company_name=f"Paging {i:03d}", account_manager_id=manager.employee_id)
        f.make_contact(session, customer=customer)
        f.make_contract(session, customer=customer, start_date=date(2020, 1, 1), end_date=date(2099, 1, 1))
    assert count_queries(session, load) == few <= 12
    first = browser.get("/staff/customers?q=Paging").get_data(as_text=True)
    assert "Page 1 of 2" in first and "Paging 049" in first and "Paging 050" not in first
    second = browser.get("/staff/customers?q=Paging&page=2").get_data(as_text=True)
    assert "Paging 050" in second and "Paging 059" in second


def test_technicians_keep_the_read_only_page_without_the_links(browser, session):
    technician = f.make_staff(session, role="technician")
    customer = f.make_customer(session)
    f.make_contract(session, customer=customer, monthly_fee=D("4321.00"))
    browser.sign_in(technician.email)
    body = browser.get(f"/staff/customers/{customer.customer_id}").get_data(as_text=True)
    assert "Edit customer" not in body and "$4,321.00" not in body and ">Customers</a>" not in body
    assert browser.get("/staff/customers").status_code == 403
    assert browser.get(f"/staff/customers/{customer.customer_id}/edit").status_code == 403


def test_the_nav_and_the_customer_page_link_to_the_crm_pages(browser, session, manager):
    customer = f.make_customer(session)
    contract = f.make_contract(session, customer=customer)
    invoice = f.make_invoice(session, customer=customer)
    body = browser.get(f"/staff/customers/{customer.customer_id}").get_data(as_text=True)
    assert ">Customers</a>" in body
    for path in ("edit", "contacts", "contracts", f"contracts/{contract.contract_id}"):
        assert f"/staff/customers/{customer.customer_id}/{path}\"" in body
    assert f'href="/staff/invoices/{invoice.invoice_id}">{invoice.invoice_number}</a>' in body


# --- a customer ------------------------------------------------------------------------------

def test_adding_a_customer_says_every_rule_beside_its_field(browser, session, manager):
    taken = f.make_customer(session, company_name="Taken Inc")
    page = browser.get("/staff/customers/new")
    assert page.status_code == 200 and "Required and unique, whatever the case" in page.get_data(as_text=True)
    refused = browser.post("/staff/customers/new", _customer_form(
        company_name="taken inc", primary_contact_email="office@acme", account_health_score="1.5",
        timezone="Mars/Olympus", service_tier=""))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert 'id="company_name-error"' in text and "A customer with this company name already exists." in text
    assert "Enter a valid email address, like name@example.com." in text
    assert "The health score is from 0 to 1, like 0.75." in text
    assert "Enter a time zone name like America/Denver." in text
    assert "Choose a service tier." in text
    assert 'value="office@acme"' in text  # what was typed stays
    shape = browser.post("/staff/customers/new", _customer_form(account_health_score="lots"))
    assert shape.status_code == 422
    assert "Enter the health score as a number from 0 to 1, like 0.75." in shape.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(Customer)
                          .where(sa.func.lower(Customer.company_name) == "taken inc")) == 1
    assert taken.customer_id

    done = browser.post("/staff/customers/new", _customer_form(company_name="Wombat Works",
                                                               account_manager_id=str(manager.employee_id)))
    assert done.status_code == 303
    wombat = session.scalar(sa.select(Customer).where(Customer.company_name == "Wombat Works"))
    assert done.headers["Location"].endswith(f"/staff/customers/{wombat.customer_id}/contacts")
    assert (wombat.account_health_score, wombat.account_manager_id) == (D("0.80"), manager.employee_id)
    assert _audit(session, "customer.created", "customers", wombat.customer_id)


def test_editing_a_customer_and_a_concurrent_edit_is_refused(browser, session, manager):
    customer = f.make_customer(session, company_name="Koala Kare")
    session.refresh(customer)
    form = _customer_form(customer, industry="Healthcare", account_health_score="0.4")
    done = browser.post(f"/staff/customers/{customer.customer_id}/edit", form)
    assert done.status_code == 303
    session.refresh(customer)
    assert (customer.industry, customer.account_health_score) == ("Healthcare", D("0.40"))
    assert _audit(session, "customer.updated", "customers", customer.customer_id)

    stale = browser.post(f"/staff/customers/{customer.customer_id}/edit",
                         {**form, "industry": "Mining", "updated_at": _made_before_the_last_change(customer)})
    text = stale.get_data(as_text=True)
    assert stale.status_code == 409 and "Someone changed Koala Kare since you opened this page" in text
    assert 'value="Healthcare"' in text  # the form shows it as it is now
    session.refresh(customer)
    assert customer.industry == "Healthcare"

    session.refresh(customer)
    bad = browser.post(f"/staff/customers/{customer.customer_id}/edit",
                       _customer_form(customer, account_health_score="-0.1"))
    assert bad.status_code == 422 and "The health score is from 0 to 1" in bad.get_data(as_text=True)


def test_an_unknown_customer_is_a_404(browser, session, manager):
    assert browser.get("/staff/customers/999999999/edit").status_code == 404
    assert browser.get("/staff/customers/999999999/contacts").status_code == 404
    assert browser.get("/staff/customers/999999999/contracts").status_code == 404


# --- contacts --------------------------------------------------------------------------------

def _contact_form(contact: Contact | None = None, **kw) -> dict:
    n = f._n()
    values = {"first_name": "Mia", "last_name": "Ng", "email": f"mia{n}@acme.com", "title": "", "department": "",
              "phone": "", "mobile": "", "communication_preference": "email", "can_create_tickets": "1"}
    if contact is not None:
        values.update({name: str(getattr(contact, name) or "") for name in values if name != "can_create_tickets"})
        values["communication_preference"] = contact.communication_preference.value
        values.update({flag: "1" for flag in ("is_primary_contact", "is_billing_contact", "can_approve_projects",
                                              "can_create_tickets") if getattr(contact, flag)})
        values["updated_at"] = contact.updated_at.isoformat()
    values.update(kw)
    return {k: v for k, v in values.items() if v is not None}


def test_adding_a_billing_contact_with_every_rule_beside_its_field_then_inviting_them(browser, session, manager,
                                                                                      outbox):
    customer = f.make_customer(session, company_name="Emu Energy", account_status="active")
    f.make_contact(session, customer=customer, email="taken@emu.com")
    page = browser.get(f"/staff/customers/{customer.customer_id}/contacts")
    assert page.status_code == 200 and "No contacts yet" not in page.get_data(as_text=True)
    refused = browser.post(f"/staff/customers/{customer.customer_id}/contacts", _contact_form(
        first_name="", email="TAKEN@emu.com", phone="call me", communication_preference="sms"))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "Enter the first name." in text and "Another contact already uses this email address." in text
    assert "Enter the phone number in digits" in text
    assert "To reach them by text message, enter their mobile number." in text
    bad_email = browser.post(f"/staff/customers/{customer.customer_id}/contacts", _contact_form(email="mia@acme"))
    assert bad_email.status_code == 422 and "Enter a valid email address" in bad_email.get_data(as_text=True)

    done = browser.post(f"/staff/customers/{customer.customer_id}/contacts", _contact_form(
        email="mia@emu.com", is_billing_contact="1", can_create_tickets=None))
    assert done.status_code == 303
    mia = session.scalar(sa.select(Contact).where(Contact.email == "mia@emu.com"))
    assert (mia.customer_id, mia.is_billing_contact, mia.can_create_tickets) == (customer.customer_id, True, False)
    assert _audit(session, "contact.created", "contacts", mia.contact_id)

    invited = browser.post(f"/staff/customers/{customer.customer_id}/contacts/{mia.contact_id}/invite")
    assert invited.status_code == 303
    assert [mail.to for mail in outbox] in ([["mia@emu.com"]], ["mia@emu.com"])
    assert "Invited" in browser.get(f"/staff/customers/{customer.customer_id}/contacts").get_data(as_text=True)


def test_a_new_primary_contact_takes_the_flag_from_the_old_one(browser, session, manager):
    customer = f.make_customer(session)
    old = f.make_contact(session, customer=customer, is_primary_contact=True)
    done = browser.post(f"/staff/customers/{customer.customer_id}/contacts",
                        _contact_form(is_primary_contact="1"))
    assert done.status_code == 303
    session.refresh(old)
    assert old.is_primary_contact is False
    primaries = session.scalars(sa.select(Contact).where(Contact.customer_id == customer.customer_id,
                                                         Contact.is_primary_contact.is_(True))).all()
    assert len(primaries) == 1 and primaries[0].contact_id != old.contact_id
    assert _audit(session, "contact.updated", "contacts", old.contact_id)


def test_editing_a_contact_moves_their_login_email_and_a_stale_form_is_refused(browser, session, manager):
    customer = f.make_customer(session)
    contact = f.make_contact_login(session, customer=customer)
    session.refresh(contact)
    url = f"/staff/customers/{customer.customer_id}/contacts/{contact.contact_id}"
    assert browser.get(url).status_code == 200
    done = browser.post(url, _contact_form(contact, email="renamed@acme-new.com", can_approve_projects="1"))
    assert done.status_code == 303
    session.refresh(contact)
    assert (contact.email, contact.can_approve_projects) == ("renamed@acme-new.com", True)
    from portal.models import Account
    assert session.scalar(sa.select(Account.email).where(Account.contact_id == contact.contact_id)) \
        == "renamed@acme-new.com"
    stale = browser.post(url, _contact_form(contact, title="CEO", updated_at=_made_before_the_last_change(contact)))
    assert stale.status_code == 409 and "since you opened this page" in stale.get_data(as_text=True)


def test_another_customers_contact_is_a_404(browser, session, manager):
    mine, theirs = f.make_customer(session), f.make_customer(session)
    contact = f.make_contact(session, customer=theirs)
    assert browser.get(f"/staff/customers/{mine.customer_id}/contacts/{contact.contact_id}").status_code == 404
    assert browser.post(f"/staff/customers/{mine.customer_id}/contacts/{contact.contact_id}",
                        _contact_form(contact)).status_code == 404
    assert browser.post(f"/staff/customers/{mine.customer_id}/contacts/{contact.contact_id}/invite").status_code == 404


def test_inviting_a_contact_of_a_prospect_is_refused_with_the_reason(browser, session, manager):
    customer = f.make_customer(session, account_status="prospect", company_name="Prospect Pty")
    contact = f.make_contact(session, customer=customer)
    refused = browser.post(f"/staff/customers/{customer.customer_id}/contacts/{contact.contact_id}/invite")
    assert refused.status_code == 422 and "Prospect Pty is not an active customer." in refused.get_data(as_text=True)


# --- contracts -------------------------------------------------------------------------------

def _contract_form(contract: ServiceContract | None = None, **kw) -> dict:
    values = {"service_tier": "professional", "contract_status": "active", "start_date": "2027-01-01",
              "end_date": "2027-12-31", "monthly_fee": "$2,500.00", "included_hours": "20",
              "hourly_rate_additional": "150", "response_time_hours": "4", "resolution_time_hours": "24",
              "price_increase_annual": "4", "auto_renewal": "1", "terms_conditions": ""}
    if contract is not None:
        values.update({name: str(getattr(contract, name) if getattr(contract, name) is not None else "")
                       for name in values if name != "auto_renewal"})
        values["service_tier"], values["contract_status"] = (contract.service_tier.value,
                                                             contract.contract_status.value)
        values["updated_at"] = contract.updated_at.isoformat()
    values.update(kw)
    return {k: v for k, v in values.items() if v is not None}


def test_making_a_contract_says_every_rule_beside_its_field(browser, session, manager):
    customer = f.make_customer(session)
    url = f"/staff/customers/{customer.customer_id}/contracts/new"
    assert browser.get(url).status_code == 200
    refused = browser.post(url, _contract_form(end_date="2026-12-31", monthly_fee="-5", included_hours="1000",
                                               hourly_rate_additional="0", resolution_time_hours="2",
                                               price_increase_annual="60"))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "The contract must end after it starts (2027-01-01): choose a later end date." in text
    assert "The monthly fee must be $0 or more." in text
    assert "The included hours must be from 0 to 744." in text
    assert "The additional hourly rate must be more than $0." in text
    assert "The resolution time cannot be shorter than the response time." in text
    assert "The annual price increase is from 0 to 50 percent." in text
    shape = browser.post(url, _contract_form(start_date="soon", monthly_fee="1e30"))
    assert shape.status_code == 422
    assert "Enter the start date as YYYY-MM-DD." in shape.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(ServiceContract)
                          .where(ServiceContract.customer_id == customer.customer_id)) == 0

    done = browser.post(url, _contract_form())
    assert done.status_code == 303
    contract = session.scalar(sa.select(ServiceContract).where(ServiceContract.customer_id == customer.customer_id))
    assert contract.contract_number.startswith("CON-2027-")
    assert (contract.monthly_fee, contract.included_hours, contract.auto_renewal) == (D("2500.00"), 20, True)
    assert _audit(session, "contract.created", "service_contracts", contract.contract_id)

    overlapping = browser.post(url, _contract_form(start_date="2027-06-01", end_date="2028-05-31"))
    assert overlapping.status_code == 422
    assert f"The active contract {contract.contract_number} is in force on some of these days" in \
        overlapping.get_data(as_text=True)



def test_a_contract_form_takes_its_covered_hours_with_messages_beside_them(browser, session, manager):
    customer = f.make_customer(session, service_tier="professional")
    url = f"/staff/customers/{customer.customer_id}/contracts/new"
    page = browser.get(url).get_data(as_text=True)
    # A new professional contract starts on business hours: Monday to Friday ticked, 08:00 to 18:00.
    for day in range(1, 6):
        assert f'id="coverage_days-{day}" name="coverage_days" value="{day}" checked' in page
    assert 'id="coverage_days-6" name="coverage_days" value="6">' in page
    assert 'value="08:00"' in page and 'value="18:00"' in page
    refused = browser.post(url, _contract_form(coverage_days=["1", "9"], coverage_start="18:00", coverage_end="08:00"))
    text = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Choose the days from Monday to Sunday." in text
    refused = browser.post(url, _contract_form(coverage_days=["1", "2"], coverage_start="18:00",
                                               coverage_end="08:00"))
    assert refused.status_code == 422
    assert "Cover must end after it starts (18:00) on the same day." in refused.get_data(as_text=True)
    done = browser.post(url, _contract_form(coverage_days=["1", "2", "3"], coverage_start="07:30",
                                            coverage_end="16:00"))
    assert done.status_code == 303
    contract = session.scalar(sa.select(ServiceContract).where(ServiceContract.customer_id == customer.customer_id))
    assert contract.coverage_days == [1, 2, 3]
    listing = browser.get(f"/staff/customers/{customer.customer_id}/contracts").get_data(as_text=True)
    assert "Mon-Wed 07:30-16:00" in listing

def test_editing_a_contract_and_a_stale_form(browser, session, manager):
    customer = f.make_customer(session)
    contract = f.make_contract(session, customer=customer)
    session.refresh(contract)
    url = f"/staff/customers/{customer.customer_id}/contracts/{contract.contract_id}"
    assert browser.get(url).status_code == 200
    done = browser.post(url, _contract_form(contract, monthly_fee="1200", contract_status="terminated"))
    assert done.status_code == 303
    session.refresh(contract)
    assert (contract.monthly_fee, contract.contract_status.value) == (D("1200.00"), "terminated")
    events = _audit(session, "contract.updated", "service_contracts", contract.contract_id)
    assert events and events[0].changes["monthly_fee"] == {"old": "1000.00", "new": "1200.00"}
    stale = browser.post(url, _contract_form(contract, monthly_fee="1300",
                                             updated_at=_made_before_the_last_change(contract)))
    assert stale.status_code == 409 and "since you opened this page" in stale.get_data(as_text=True)
    other = f.make_customer(session)
    assert browser.get(f"/staff/customers/{other.customer_id}/contracts/{contract.contract_id}").status_code == 404


# --- renewal ---------------------------------------------------------------------------------

def test_renewing_shows_the_price_change_then_makes_the_next_contract_once(browser, session, manager):
    customer = f.make_customer(session, company_name="Boulder Test")
    old = f.make_contract(session, customer=customer, start_date=date(2025, 1, 15), end_date=date(2026, 1, 14),
                          monthly_fee=D("2000.00"), hourly_rate_additional=D("125.00"),
                          price_increase_annual=D("3.00"))
    session.refresh(old)
    url = f"/staff/customers/{customer.customer_id}/contracts/{old.contract_id}/renew"
    preview = browser.get(url)
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert "$2,000.00" in text and "$2,060.00" in text and "+$60.00 (3%)" in text
    assert "15 Jan 2026" in text and "14 Jan 2027" in text and "$128.75" in text

    stale = browser.post(url, {"updated_at": _made_before_the_last_change(old)})
    assert stale.status_code == 409
    done = browser.post(url, {"updated_at": old.updated_at.isoformat()})
    assert done.status_code == 303
    new = session.scalar(sa.select(ServiceContract).where(ServiceContract.customer_id == customer.customer_id,
                                                          ServiceContract.contract_id != old.contract_id))
    assert (new.start_date, new.end_date, new.monthly_fee, new.hourly_rate_additional) == (
        date(2026, 1, 15), date(2027, 1, 14), D("2060.00"), D("128.75"))
    assert new.contract_status.value == "active" and new.included_hours == old.included_hours
    assert _audit(session, "contract.renewed", "service_contracts", new.contract_id)

    again = browser.post(url, {"updated_at": old.updated_at.isoformat()})
    assert again.status_code == 409 and f"renewed already, by {new.contract_number}" in again.get_data(as_text=True)
    assert f"renewed already, by {new.contract_number}" in browser.get(url).get_data(as_text=True)
    listing = browser.get(f"/staff/customers/{customer.customer_id}/contracts").get_data(as_text=True)
    assert f"Renewed by {new.contract_number}" in listing
    assert f'contracts/{old.contract_id}/renew"' not in listing and f'contracts/{new.contract_id}/renew"' in listing


def test_the_crm_pages_cost_a_fixed_number_of_statements(browser, session, manager):
    customer = f.make_customer(session)
    contract = f.make_contract(session, customer=customer, start_date=date(2030, 1, 1), end_date=date(2030, 12, 31))
    contact = f.make_contact(session, customer=customer)
    pages = [f"/staff/customers/{customer.customer_id}/{path}" for path in (
        "edit", "contacts", "contracts", "contracts/new", f"contracts/{contract.contract_id}",
        f"contracts/{contract.contract_id}/renew", f"contacts/{contact.contact_id}")] + ["/staff/customers/new"]
    for path in pages:
        browser.get(path)
    few = {path: count_queries(session, lambda path=path: browser.get(path)) for path in pages}
    for _ in range(15):
        f.make_contact(session, customer=customer)
    for year in range(2000, 2015):
        f.make_contract(session, customer=customer, start_date=date(year, 1, 1), end_date=date(year, 12, 31))
    for path in pages:
        assert count_queries(session, lambda path=path: browser.get(path)) == few[path] <= 12, path


def test_the_audit_log_tells_the_crm_changes_in_words(browser, session):
    admin = f.make_staff(session, role="admin")
    browser.sign_in(admin.email)
    customer = f.make_customer(session, company_name="Wording Ltd")
    session.refresh(customer)
    done = browser.post(f"/staff/customers/{customer.customer_id}/edit",
                        _customer_form(customer, account_status="suspended", account_manager_id=str(admin.employee_id)))
    assert done.status_code == 303
    log = browser.get(f"/staff/admin/audit?table=customers&row_id={customer.customer_id}").get_data(as_text=True)
    assert "Customer changed" in log and "Account manager" in log and admin.first_name in log
    assert "Suspended" in log
