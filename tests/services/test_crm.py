"""Customers, contacts and contracts as the staff's CRM pages change them (services/crm.py and
services/contracts.py, which the REST API uses too): each rule with its message, the permission
checks, the audit rows, one primary contact per customer, the renewal's term and prices, and two
renewals at the same moment making one contract."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import Decimal as D

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from portal.models import Account, AuditEvent, Contact, ContractStatus, Customer, ServiceContract, ServiceTier
from portal.services import auth, contracts, crm, policy
from portal.services.contracts import ContractTerms
from portal.services.crm import ContactDetails, CustomerDetailsForm
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound
from tests import factories as f


def _principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.employee_id == person.employee_id))
    return auth.principal_for(session, account_id)


@pytest.fixture
def manager(session):
    return _principal(session, f.make_staff(session, role="account_manager"))


def _customer(**kw) -> CustomerDetailsForm:
    n = f._n()
    values = dict(company_name=f"Numbat {n}", company_size="small", service_tier=ServiceTier.ESSENTIAL,
                  account_status="active", account_health_score=D("0.75"), timezone="America/Denver")
    values.update(kw)
    return CustomerDetailsForm(**values)


def _events(session, action, table, row_id):
    return session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action, AuditEvent.table_name == table,
                                                       AuditEvent.row_id == row_id)).all()


@pytest.mark.parametrize("field, change, message", [
    ("company_name", {"company_name": "  "}, "Enter the company name."),
    ("company_name", {"company_name": "x" * 256}, "The company name can be at most 255 characters."),
    ("primary_contact_email", {"primary_contact_email": "office@acme"}, "Enter a valid email address"),
    ("account_health_score", {"account_health_score": D("1.01")}, "The health score is from 0 to 1"),
    ("account_health_score", {"account_health_score": D("-0.5")}, "The health score is from 0 to 1"),
    ("account_health_score", {"account_health_score": D("0.755")}, "two decimals at most"),
    ("account_health_score", {"account_health_score": None}, "Enter the health score"),
    ("timezone", {"timezone": "Denver"}, "Enter a time zone name like America/Denver."),
    ("service_tier", {"service_tier": None}, "Choose a service tier."),
    ("industry", {"industry": "i" * 101}, "The industry can be at most 100 characters."),
])
def test_each_customer_rule_says_what_is_wrong_beside_its_field(session, manager, field, change, message):
    with pytest.raises(Invalid) as refused:
        crm.add_customer(session, manager, _customer(**change))
    assert message in refused.value.errors[field]


def test_a_company_name_used_twice_in_any_case_is_refused(session, manager):
    f.make_customer(session, company_name="Echidna Labs")
    assert crm.customer_errors(session, manager, _customer(company_name="ECHIDNA labs"))["company_name"] == \
        "A customer with this company name already exists."
    # The API's path answers a Conflict (409), as before.
    with pytest.raises(Conflict):
        crm.create_customer(session, manager, crm.NewCustomer(company_name="echidna LABS"))


def test_the_account_manager_must_be_an_active_account_manager_or_admin(session, manager):
    technician = f.make_employee(session, role="technician")
    with pytest.raises(Invalid) as refused:
        crm.add_customer(session, manager, _customer(account_manager_id=technician.employee_id))
    assert refused.value.errors["account_manager_id"] == "Choose an active account manager or administrator."
    customer = crm.add_customer(session, manager, _customer(account_manager_id=manager.employee_id))
    assert customer.account_manager_id == manager.employee_id


def test_only_account_managers_and_admins_manage_customers_and_contracts(session):
    technician = _principal(session, f.make_staff(session, role="technician"))
    customer = f.make_customer(session)
    with pytest.raises(Forbidden):
        crm.add_customer(session, technician, _customer())
    with pytest.raises(Forbidden):
        crm.customer_list(session, technician, crm.CustomerFilters())
    with pytest.raises(Forbidden):
        crm.add_contact(session, technician, customer.customer_id, ContactDetails(first_name="A", last_name="B",
                                                                                  email="a@b.com"))
    with pytest.raises(Forbidden):
        contracts.create_contract(session, technician, customer.customer_id, ContractTerms())
    assert not policy.may_manage_contracts(technician)
    client = policy.Principal.api_client(1, "zapier", {"customers:write"})
    assert policy.may_manage_customers(client) and not policy.may_manage_contracts(client)


def test_editing_is_audited_and_an_old_form_is_refused(session, manager):
    customer = crm.add_customer(session, manager, _customer(company_name="Bilby Bank"))
    assert _events(session, "customer.created", "customers", customer.customer_id)
    stamp = customer.updated_at
    crm.edit_customer(session, manager, customer.customer_id,
                      replace(CustomerDetailsForm.of(customer), account_health_score=D("0.30")),
                      expected_updated_at=stamp)
    [event] = _events(session, "customer.updated", "customers", customer.customer_id)
    assert event.changes["account_health_score"] == {"old": "0.75", "new": "0.30"}
    with pytest.raises(Conflict) as stale:
        crm.edit_customer(session, manager, customer.customer_id, CustomerDetailsForm.of(customer),
                          expected_updated_at=stamp.replace(year=2020))
    assert stale.value.field is None
    with pytest.raises(NotFound):
        crm.edit_customer(session, manager, 999_999_999, CustomerDetailsForm.of(customer), expected_updated_at=stamp)


def test_the_customer_list_searches_contacts_and_filters(session, manager):
    a = f.make_customer(session, company_name="Platypus Paints", account_manager_id=manager.employee_id)
    b = f.make_customer(session, company_name="Platypus Pools", account_status="inactive")
    f.make_contact(session, customer=b, first_name="Gus", last_name="Dingo", email="gus@pools.example")
    names = lambda **kw: [r.customer.company_name for r in crm.customer_list(  # noqa: E731
        session, manager, crm.CustomerFilters(**kw)).rows]
    assert names(q="platypus") == ["Platypus Paints", "Platypus Pools"]
    assert names(q="gus dingo") == ["Platypus Pools"]
    assert names(q="pools.example") == ["Platypus Pools"]
    assert names(q="platypus", status="inactive") == ["Platypus Pools"]
    assert names(q="platypus", manager=str(manager.employee_id)) == ["Platypus Paints"]
    assert names(q="platypus", manager="none") == ["Platypus Pools"]
    assert names(q="100%_sure") == []  # LIKE's wildcards are text
    assert a.customer_id


# --- contacts --------------------------------------------------------------------------------

def _contact(**kw) -> ContactDetails:
    n = f._n()
    values = dict(first_name="Ada", last_name="Wong", email=f"ada{n}@quoll.example", communication_preference="email")
    values.update(kw)
    return ContactDetails(**values)


@pytest.mark.parametrize("field, change, message", [
    ("first_name", {"first_name": ""}, "Enter the first name."),
    ("last_name", {"last_name": "l" * 101}, "The last name can be at most 100 characters."),
    ("email", {"email": "ada@quoll"}, "Enter a valid email address, like name@example.com."),
    ("phone", {"phone": "555"}, "Enter the phone number in digits"),
    ("communication_preference", {"communication_preference": None}, "Choose how we should contact them."),
    ("communication_preference", {"communication_preference": "sms"}, "enter their mobile number"),
    ("communication_preference", {"communication_preference": "phone"}, "enter a phone or mobile number"),
])
def test_each_contact_rule_says_what_is_wrong_beside_its_field(session, manager, field, change, message):
    customer = f.make_customer(session)
    with pytest.raises(Invalid) as refused:
        crm.add_contact(session, manager, customer.customer_id, _contact(**change))
    assert message in refused.value.errors[field]


def test_a_contact_email_is_unique_among_contacts_and_logins(session, manager):
    customer = f.make_customer(session)
    f.make_contact(session, email="Taken@Quoll.example")
    employee = f.make_staff(session)
    assert crm.contact_errors(session, manager, _contact(email="taken@quoll.example"))["email"] == \
        "Another contact already uses this email address."
    assert "Another login" in crm.contact_errors(session, manager, _contact(email=employee.email.upper()))["email"]
    assert customer.customer_id


def test_one_primary_contact_per_customer_and_flags_are_audited(session, manager):
    customer = f.make_customer(session)
    first = crm.add_contact(session, manager, customer.customer_id, _contact(is_primary_contact=True))
    second = crm.add_contact(session, manager, customer.customer_id,
                             _contact(is_primary_contact=True, is_billing_contact=True, can_create_tickets=False))
    session.refresh(first)
    assert (first.is_primary_contact, second.is_primary_contact, second.is_billing_contact) == (False, True, True)
    [taken] = _events(session, "contact.updated", "contacts", first.contact_id)
    assert taken.changes["is_primary_contact"] == {"old": True, "new": False}
    [created] = _events(session, "contact.created", "contacts", second.contact_id)
    assert created.changes["is_billing_contact"]["new"] is True
    session.refresh(second)
    crm.update_contact(session, manager, customer.customer_id, second.contact_id,
                       replace(ContactDetails.of(second), can_approve_projects=True),
                       expected_updated_at=second.updated_at)
    assert _events(session, "contact.updated", "contacts", second.contact_id)
    with pytest.raises(NotFound):  # another customer's contact, through this customer
        crm.update_contact(session, manager, f.make_customer(session).customer_id, second.contact_id,
                           ContactDetails.of(second), expected_updated_at=second.updated_at)


# --- contracts -------------------------------------------------------------------------------

def _terms(**kw) -> ContractTerms:
    values = dict(service_tier=ServiceTier.PROFESSIONAL, contract_status=ContractStatus.ACTIVE,
                  start_date=date(2027, 1, 1), end_date=date(2027, 12, 31), monthly_fee=D("1500.00"),
                  included_hours=10, hourly_rate_additional=D("125.00"), response_time_hours=4,
                  resolution_time_hours=24, price_increase_annual=D("3.00"), auto_renewal=True)
    values.update(kw)
    return ContractTerms(**values)


@pytest.mark.parametrize("field, change, message", [
    ("end_date", {"end_date": date(2026, 12, 31)}, "The contract must end after it starts (2027-01-01)"),
    ("end_date", {"end_date": date(2027, 1, 1)}, "The contract must end after it starts"),
    ("start_date", {"start_date": None}, "Enter the start date as YYYY-MM-DD."),
    ("monthly_fee", {"monthly_fee": D("-1")}, "The monthly fee must be $0 or more."),
    ("monthly_fee", {"monthly_fee": D("1000000.01")}, "The monthly fee can be at most $1,000,000.00."),
    ("monthly_fee", {"monthly_fee": D("10.005")}, "two decimals at most"),
    ("hourly_rate_additional", {"hourly_rate_additional": D("0")}, "must be more than $0"),
    ("included_hours", {"included_hours": 745}, "The included hours must be from 0 to 744."),
    ("response_time_hours", {"response_time_hours": 0}, "The response time must be from 1 to 2,160."),
    ("resolution_time_hours", {"resolution_time_hours": 2}, "cannot be shorter than the response time"),
    ("price_increase_annual", {"price_increase_annual": D("50.5")}, "from 0 to 50 percent"),
    ("service_tier", {"service_tier": None}, "Choose a service tier."),
    ("contract_status", {"contract_status": None}, "Choose a status."),
])
def test_each_contract_rule_says_what_is_wrong_beside_its_field(session, manager, field, change, message):
    customer = f.make_customer(session)
    with pytest.raises(Invalid) as refused:
        contracts.create_contract(session, manager, customer.customer_id, _terms(**change))
    assert message in refused.value.errors[field]



BUSINESS = dict(coverage_days=(1, 2, 3, 4, 5), coverage_start=time(8), coverage_end=time(18))


@pytest.mark.parametrize("field, change, message", [
    ("coverage_days", {"coverage_start": time(8), "coverage_end": time(18)}, "Tick the weekdays these hours cover"),
    ("coverage_days", {**BUSINESS, "coverage_days": (1, 8)}, "Choose the days from Monday to Sunday."),
    ("coverage_start", {**BUSINESS, "coverage_start": None}, "Enter the time cover starts on those days"),
    ("coverage_end", {**BUSINESS, "coverage_end": None}, "Enter the time cover ends on those days"),
    ("coverage_end", {**BUSINESS, "coverage_end": time(8)}, "Cover must end after it starts (08:00)"),
])
def test_each_coverage_rule_says_what_is_wrong_beside_its_field(session, manager, field, change, message):
    customer = f.make_customer(session)
    with pytest.raises(Invalid) as refused:
        contracts.create_contract(session, manager, customer.customer_id, _terms(**change))
    assert message in refused.value.errors[field]


def test_coverage_is_stored_renewed_and_a_change_moves_open_tickets_deadlines(session, manager):
    customer = f.make_customer(session, timezone="America/Denver")
    always = contracts.create_contract(session, manager, customer.customer_id,
                                       _terms(start_date=date(2026, 1, 1), end_date=date(2026, 12, 31)))
    assert (always.coverage_days, always.coverage_start, always.coverage_end) == (None, None, None)
    # Friday 5 June 2026, 17:30 in Denver (23:30 UTC); 4 h response.
    ticket = f.make_ticket(session, customer=customer, contract_id=always.contract_id,
                           created_at=datetime(2026, 6, 5, 23, 30, tzinfo=UTC))
    closed = f.make_ticket(session, customer=customer, contract_id=always.contract_id, status="closed",
                           created_at=datetime(2026, 6, 5, 23, 30, tzinfo=UTC))
    from portal.services.sla import refresh_sla
    refresh_sla(session, ticket)
    refresh_sla(session, closed)
    session.flush()
    assert ticket.response_due_at == datetime(2026, 6, 6, 3, 30, tzinfo=UTC)  # 24x7: 21:30 the same evening
    session.refresh(always)
    changed = contracts.update_contract(session, manager, customer.customer_id, always.contract_id,
                                        replace(ContractTerms.of(always), **BUSINESS),
                                        expected_updated_at=always.updated_at)
    assert (changed.coverage_days, changed.coverage_start, changed.coverage_end) == ([1, 2, 3, 4, 5], time(8), time(18))
    session.refresh(ticket)
    session.refresh(closed)
    # Mon-Fri 08:00-18:00 Denver: half an hour on Friday, 3.5 h on Monday: Monday 11:30 (17:30 UTC).
    assert ticket.response_due_at == datetime(2026, 6, 8, 17, 30, tzinfo=UTC)
    assert closed.response_due_at == datetime(2026, 6, 6, 3, 30, tzinfo=UTC)  # a closed ticket keeps its times
    [event] = _events(session, "contract.updated", "service_contracts", always.contract_id)
    assert event.changes["coverage_start"] == {"old": None, "new": "08:00"}
    renewal = contracts.renewal_of(session, manager, customer.customer_id, always.contract_id)
    assert (renewal.terms.coverage_days, renewal.terms.coverage_end) == ((1, 2, 3, 4, 5), time(18))

def test_active_contracts_of_one_customer_may_not_overlap_but_drafts_may(session, manager):
    customer = f.make_customer(session)
    first = contracts.create_contract(session, manager, customer.customer_id, _terms())
    assert first.contract_number.startswith("CON-2027-")
    with pytest.raises(Invalid) as refused:
        contracts.create_contract(session, manager, customer.customer_id,
                                  _terms(start_date=date(2027, 12, 31), end_date=date(2028, 12, 30)))
    assert first.contract_number in refused.value.errors["start_date"]
    draft = contracts.create_contract(session, manager, customer.customer_id,
                                      _terms(contract_status=ContractStatus.DRAFT))
    assert draft.contract_status == ContractStatus.DRAFT
    other = contracts.create_contract(session, manager, f.make_customer(session).customer_id, _terms())
    assert other.contract_id


@pytest.mark.parametrize("start, end, new_start, new_end", [
    (date(2025, 1, 15), date(2026, 1, 14), date(2026, 1, 15), date(2027, 1, 14)),  # a year, mid-month
    (date(2026, 1, 1), date(2026, 12, 31), date(2027, 1, 1), date(2027, 12, 31)),
    (date(2026, 1, 31), date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 27)),  # not whole months: 28 days
    (date(2026, 3, 1), date(2026, 5, 31), date(2026, 6, 1), date(2026, 8, 31)),  # a quarter
    (date(2023, 3, 1), date(2024, 2, 29), date(2024, 3, 1), date(2025, 2, 28)),  # across a leap day
])
def test_the_renewed_term_starts_the_day_after_and_lasts_as_long(start, end, new_start, new_end):
    assert contracts.renewed_term(start, end) == (new_start, new_end)


def test_the_raised_price_rounds_half_up_to_cents():
    assert contracts.raised(D("1000.50"), D("3.00")) == D("1030.52")  # 1030.515
    assert contracts.raised(D("0.00"), D("3.00")) == D("0.00")
    assert contracts.raised(D("125.00"), D("0")) == D("125.00")


def test_renewing_makes_the_next_contract_once_and_refuses_a_terminated_one(session, manager):
    customer = f.make_customer(session)
    old = f.make_contract(session, customer=customer, start_date=date(2026, 1, 1), end_date=date(2026, 12, 31),
                          monthly_fee=D("1000.00"), hourly_rate_additional=D("150.00"),
                          price_increase_annual=D("5.00"))
    session.refresh(old)
    preview = contracts.renewal_of(session, manager, customer.customer_id, old.contract_id)
    assert (preview.terms.monthly_fee, preview.fee_change, preview.fee_change_percent) == (
        D("1050.00"), D("50.00"), D("5.0"))
    new = contracts.renew_contract(session, manager, customer.customer_id, old.contract_id,
                                   expected_updated_at=old.updated_at)
    assert (new.start_date, new.end_date, new.monthly_fee, new.hourly_rate_additional) == (
        date(2027, 1, 1), date(2027, 12, 31), D("1050.00"), D("157.50"))
    [event] = _events(session, "contract.renewed", "service_contracts", new.contract_id)
    assert event.changes["renews"]["new"] == old.contract_number
    with pytest.raises(Conflict) as twice:
        contracts.renew_contract(session, manager, customer.customer_id, old.contract_id,
                                 expected_updated_at=old.updated_at)
    assert new.contract_number in twice.value.message
    ended = f.make_contract(session, customer=f.make_customer(session), contract_status="terminated")
    session.refresh(ended)
    with pytest.raises(Invalid) as refused:
        contracts.renew_contract(session, manager, ended.customer_id, ended.contract_id,
                                 expected_updated_at=ended.updated_at)
    assert "only an active or expired contract is renewed" in refused.value.message


def test_two_renewals_at_the_same_moment_make_one_contract(pg, app):
    """Two account managers confirm the same renewal at once, each in its own transaction: the
    customer's row is locked first, so the second waits, then finds the first's contract (409)."""
    name = pg.create_database("techserv_two_renewals")
    try:
        from tests.test_migrations import migrate_database

        migrate_database(pg, name)
        engine = sa.create_engine(pg.url_for(name))
        Session = orm.sessionmaker(engine)
        with Session.begin() as setup:
            people = [f.make_staff(setup, role="account_manager") for _ in range(2)]
            old = f.make_contract(setup, start_date=date(2026, 1, 1), end_date=date(2026, 12, 31))
            setup.flush()
            setup.refresh(old)
            ids = (old.customer_id, old.contract_id, old.updated_at, [p.employee_id for p in people])
        customer_id, contract_id, stamp, employee_ids = ids
        with Session() as s:
            who = [_principal(s, s.get(type(people[0]), i)) for i in employee_ids]
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def renew(principal) -> None:
            with Session() as s:
                barrier.wait()
                try:
                    contracts.renew_contract(s, principal, customer_id, contract_id, expected_updated_at=stamp)
                    s.commit()
                    outcomes.append("renewed")
                except Conflict:
                    s.rollback()
                    outcomes.append("conflict")

        threads = [threading.Thread(target=renew, args=(p,)) for p in who]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(outcomes) == ["conflict", "renewed"]
        with Session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(ServiceContract)
                            .where(ServiceContract.customer_id == customer_id)) == 2
        engine.dispose()
    finally:
        pg.drop_database(name)


def test_the_api_still_creates_a_customer_with_its_primary_contact(session):
    client = policy.Principal.api_client(1, "zapier", {"customers:write"})
    customer = crm.create_customer(session, client, crm.NewCustomer(
        company_name="Wallaby Ware", primary_contact=crm.NewContact(first_name="W", last_name="W",
                                                                    email="w@wallaby.example")))
    assert customer.primary_contact_email == "w@wallaby.example"
    assert session.scalar(sa.select(Contact.is_primary_contact).where(Contact.email == "w@wallaby.example"))
    assert session.get(Customer, customer.customer_id).account_manager_id is None


def test_customer_for_email_finds_a_contact_then_a_customer_in_any_case(session):
    system = policy.Principal(account_id=None, email="", name="system", is_system=True)
    known = f.make_customer(session, primary_contact_email="Desk@Known-Co.example")
    second = f.make_contact(session, known, email="second@known-co.example", is_primary_contact=True)
    f.make_contact(session, known, email="third@known-co.example", is_primary_contact=True)
    writer = f.make_contact(session, known, email="Pat.Writer@Known-Co.example")
    bare = f.make_customer(session, primary_contact_email="office@bare-co.example")  # no contacts at all
    # a contact whose address is also another customer's: the contact wins
    other = f.make_customer(session, primary_contact_email="shared@both.example")
    sharing = f.make_contact(session, f.make_customer(session), email="shared@both.example")
    session.flush()

    assert crm.customer_for_email(session, system, "  pat.writer@KNOWN-co.example ") == (known.customer_id,
                                                                                        writer.contact_id)
    assert crm.customer_for_email(session, system, "desk@known-co.example") == (known.customer_id,
                                                                                second.contact_id)
    assert crm.customer_for_email(session, system, "OFFICE@bare-co.example") == (bare.customer_id, None)
    assert crm.customer_for_email(session, system, "shared@both.example") == (sharing.customer_id,
                                                                              sharing.contact_id)
    assert other.customer_id != sharing.customer_id
    with pytest.raises(Invalid) as refused:
        crm.customer_for_email(session, system, "nobody@nowhere.example")
    assert refused.value.field == "customer_email"
