"""Customers, their contacts and contracts, as automation sees them: create a customer with its
primary contact in one transaction, update it, find a customer by an email address, read contracts.

Small and generic on purpose (the staff pages for customers come with their own issue; the lead
reconciles both into one module). Every function takes the principal first and asks the policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from portal.models import (
    AccountStatus,
    CompanySize,
    Contact,
    Customer,
    ServiceContract,
    ServiceTier,
)
from portal.models.customers import EMAIL_PATTERN
from portal.services import events, policy
from portal.services.errors import Conflict, Forbidden, Invalid, NotFound

EMAIL = re.compile(EMAIL_PATTERN)


@dataclass(frozen=True)
class NewContact:
    first_name: str
    last_name: str
    email: str
    title: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class NewCustomer:
    company_name: str
    industry: str | None = None
    service_tier: ServiceTier | None = None
    company_size: CompanySize | None = None
    account_status: AccountStatus | None = None
    billing_address: str | None = None
    service_address: str | None = None
    primary_contact: NewContact | None = None
    # Set by the staff form (the API leaves them to their defaults).
    primary_contact_email: str | None = None
    account_health_score: Decimal | None = None
    tax_id: str | None = None
    timezone: str | None = None
    account_manager_id: int | None = None


# Fields of a customer that may be changed, with their longest length (None: an enum or free text).
CUSTOMER_FIELDS: dict[str, int | None] = {
    "company_name": 255, "industry": 100, "service_tier": None, "company_size": None, "account_status": None,
    "primary_contact_email": 255, "billing_address": None, "service_address": None, "timezone": 50,
    "tax_id": 20, "account_health_score": None, "account_manager_id": None,
}

# The seed's rules, as the staff form says them beside each field.
CUSTOMER_RULES = {
    "company_name": "Required and unique, whatever the case; up to 255 characters.",
    "industry": "Optional, up to 100 characters, like Healthcare.",
    "company_size": "",
    "service_tier": "The support level they buy; each contract has its own tier and prices.",
    "account_status": "Contacts of active customers sign in; suspended ones only read; prospects and inactive "
                      "customers not at all.",
    "account_manager_id": "The account manager (or administrator) who looks after them.",
    "primary_contact_email": "Optional. The company's main address, like office@example.com: tickets mailed "
                             "from it are theirs.",
    "account_health_score": "From 0 (about to leave) to 1 (very happy), two decimals at most, like 0.75.",
    "tax_id": "Optional, up to 20 characters.",
    "timezone": "A time zone name like America/Denver.",
    "billing_address": "Optional. Printed on their invoices.",
    "service_address": "Optional. Where technicians go on site.",
}
CUSTOMER_FIELD_ORDER = list(CUSTOMER_RULES)
HEALTH_MIN, HEALTH_MAX = Decimal("0"), Decimal("1")
HEALTH_DEFAULT = Decimal("0.75")  # the seed's column default


def _text(value: str | None, field_name: str, label: str, longest: int, *, required: bool = False) -> str | None:
    text = " ".join((value or "").split()) if longest <= 255 else (value or "").strip()
    if not text:
        if required:
            raise Invalid(f"Enter the {label}.", field_name)
        return None
    if len(text) > longest:
        raise Invalid(f"The {label} can be at most {longest} characters.", field_name)
    return text


def _email(value: str | None, field_name: str) -> str:
    text = (value or "").strip()
    if not EMAIL.match(text) or len(text) > 255:
        raise Invalid("Enter a valid email address, like name@example.com.", field_name)
    return text


def _collect(checks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    values, errors = {}, {}
    for name, check in checks.items():
        try:
            values[name] = check()
        except Invalid as error:
            errors[error.field or name] = error.message
    return values, errors


def _raise(errors: dict[str, str]) -> None:
    if errors:
        first = next(iter(errors))
        raise Invalid(errors[first], first, errors)


def create_customer(session, principal: policy.Principal, data: NewCustomer) -> Customer:
    """A new customer and, when given, its primary contact (one transaction).

    :raises Forbidden: not an account manager, admin or client with customers:write.
    :raises Invalid: a field is missing or wrong (named; the contact's as `primary_contact.email`).
    :raises Conflict: the company name or the contact's email is taken.
    """
    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators add customers.")
    contact = data.primary_contact
    values, errors = _collect({
        "company_name": lambda: _text(data.company_name, "company_name", "company name", 255, required=True),
        "industry": lambda: _text(data.industry, "industry", "industry", 100),
        "billing_address": lambda: _text(data.billing_address, "billing_address", "billing address", 2000),
        "service_address": lambda: _text(data.service_address, "service_address", "service address", 2000),
        **{name: _field_check(session, name, getattr(data, name))
           for name in ("primary_contact_email", "account_health_score", "tax_id", "timezone", "account_manager_id")
           if getattr(data, name) is not None},
    })
    if contact is not None:
        contact_values, contact_errors = _collect({
            "first_name": lambda: _text(contact.first_name, "primary_contact.first_name", "first name", 100,
                                        required=True),
            "last_name": lambda: _text(contact.last_name, "primary_contact.last_name", "last name", 100,
                                       required=True),
            "email": lambda: _email(contact.email, "primary_contact.email"),
            "title": lambda: _text(contact.title, "primary_contact.title", "title", 100),
            "phone": lambda: _text(contact.phone, "primary_contact.phone", "phone", 20),
        })
        errors.update(contact_errors)
    _raise(errors)
    if session.scalar(sa.select(Customer.customer_id).where(
            sa.func.lower(Customer.company_name) == values["company_name"].lower())):
        raise Conflict("A customer with this company name already exists.", "company_name")
    if contact is not None and session.scalar(sa.select(Contact.contact_id).where(
            sa.func.lower(Contact.email) == contact_values["email"].lower())):
        raise Conflict("Another contact already uses this email address.", "primary_contact.email")
    customer = Customer(company_name=values["company_name"], industry=values["industry"],
                        billing_address=values["billing_address"], service_address=values["service_address"],
                        primary_contact_email=contact_values["email"] if contact is not None else None)
    for name in ("service_tier", "company_size", "account_status"):
        if getattr(data, name) is not None:
            setattr(customer, name, getattr(data, name))
    for name in ("primary_contact_email", "account_health_score", "tax_id", "timezone", "account_manager_id"):
        if values.get(name) is not None:
            setattr(customer, name, values[name])
    session.add(customer)
    session.flush()
    events.emit(session, principal, "customer.created", customer,
                {"customer_id": customer.customer_id}, changes={"company_name": (None, customer.company_name)})
    if contact is not None:
        person = Contact(customer_id=customer.customer_id, is_primary_contact=True, can_create_tickets=True,
                         **contact_values)
        session.add(person)
        session.flush()
        events.emit(session, principal, "contact.created", person,
                    {"contact_id": person.contact_id, "customer_id": customer.customer_id},
                    changes={"email": (None, person.email), "is_primary_contact": (None, True)})
    session.refresh(customer)
    return customer


def visible_customer(session, principal: policy.Principal, customer_id: int, *, lock: bool = False) -> Customer:
    """:raises NotFound: no such customer, or one the principal may not see (the same answer)."""
    if not policy.may_see_customer(principal, customer_id):
        raise NotFound("No such customer.")
    query = sa.select(Customer).where(Customer.customer_id == customer_id)
    # A locked read refreshes the row: what another transaction committed before the lock is what counts.
    customer = session.scalar(query.with_for_update().execution_options(populate_existing=True) if lock else query)
    if customer is None:
        raise NotFound("No such customer.")
    return customer


def _field_check(session, name: str, value):
    """A check of one customer field (CUSTOMER_FIELDS): a callable returning the value to store or raising Invalid."""
    longest = CUSTOMER_FIELDS[name]
    if name == "primary_contact_email":
        return lambda: _email(value, "primary_contact_email") if value else None
    if name in ("billing_address", "service_address"):
        return lambda: _text(value, name, name.replace("_", " "), 2000)
    if name == "account_health_score":
        return lambda: _health_score(value)
    if name == "account_manager_id":
        return lambda: _account_manager(session, value)
    if name == "timezone":
        return lambda: _timezone(value)
    if longest is None:
        return lambda: _required_choice(value, name)
    return lambda: _text(value, name, name.replace("_", " "), longest, required=name == "company_name")


def _health_score(value) -> Decimal:
    if value is None or value == "":
        raise Invalid("Enter the health score, from 0 to 1, like 0.75.", "account_health_score")
    try:
        score = Decimal(str(value))
    except ArithmeticError:
        raise Invalid("Enter the health score as a number from 0 to 1, like 0.75.", "account_health_score") from None
    if not score.is_finite() or not HEALTH_MIN <= score <= HEALTH_MAX:
        raise Invalid("The health score is from 0 to 1, like 0.75.", "account_health_score")
    if score != score.quantize(Decimal("0.01")):
        raise Invalid("Give the health score with two decimals at most, like 0.75.", "account_health_score")
    return score.quantize(Decimal("0.01"))


def _timezone(value) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = _text(value, "timezone", "time zone", 50, required=True)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("Enter a time zone name like America/Denver.", "timezone") from None
    return text


def _account_manager(session, employee_id: int | None) -> int | None:
    if employee_id is None:
        return None
    if employee_id not in dict(account_managers(session)):
        raise Invalid("Choose an active account manager or administrator.", "account_manager_id")
    return employee_id


def account_managers(session) -> list[tuple[int, str]]:
    """(id, name) of the active employees who may look after customers (account managers and admins)."""
    from portal.models import Employee, EmployeeRole, EmploymentStatus

    return [tuple(row) for row in session.execute(
        sa.select(Employee.employee_id, Employee.first_name + " " + Employee.last_name)
        .where(Employee.employment_status == EmploymentStatus.ACTIVE,
               Employee.role.in_((EmployeeRole.ACCOUNT_MANAGER, EmployeeRole.ADMIN)))
        .order_by(Employee.first_name, Employee.last_name))]


def update_customer(session, principal: policy.Principal, customer: Customer, changes: dict[str, Any], *,
                    expected_updated_at: datetime | None = None) -> Customer:
    """Change some of a customer's fields (CUSTOMER_FIELDS; enums already typed).

    :raises Forbidden: not allowed to manage customers. :raises Invalid: a value is wrong (named).
    :raises Conflict: the new company name is taken, or (with `expected_updated_at`) someone changed
        the customer since the form was made (no field named).
    """
    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators change customers.")
    if expected_updated_at is not None and customer.updated_at != expected_updated_at:
        raise Conflict(f"Someone changed {customer.company_name} since you opened this page. Here it is as it is "
                       "now; make your change again.")
    unknown = sorted(set(changes) - set(CUSTOMER_FIELDS))
    if unknown:
        raise Invalid(f"{unknown[0]} cannot be changed here.", unknown[0])
    values, errors = _collect({name: _field_check(session, name, value) for name, value in changes.items()})
    _raise(errors)
    if "company_name" in values and session.scalar(sa.select(Customer.customer_id).where(
            sa.func.lower(Customer.company_name) == values["company_name"].lower(),
            Customer.customer_id != customer.customer_id)):
        raise Conflict("A customer with this company name already exists.", "company_name")
    changed = events.apply_changes(customer, values)
    if changed:
        session.flush()
        events.emit(session, principal, "customer.updated", customer, {"customer_id": customer.customer_id},
                    changes=changed)
        session.refresh(customer)
    return customer


def _required_choice(value, name: str):
    if value is None:
        raise Invalid(f"Choose a {name.replace('_', ' ')}.", name)
    return value


def customer_for_email(session, principal: policy.Principal, email: str) -> tuple[int, int | None]:
    """(customer id, contact id or None) for an address: a contact's email first, then a customer's
    primary contact email (as email automation finds who wrote).

    :raises Invalid: nobody has this address (said so, naming the field `customer_email`).
    """
    text = (email or "").strip()
    if not text:
        raise Invalid("Give the customer's or the contact's email address.", "customer_email")
    address = text.lower()
    # One statement: a contact with the address, else the first customer known by it with its first
    # primary contact (both from the indexes of lower(email), migration 0024).
    primary = (sa.select(Contact.contact_id).where(Contact.customer_id == Customer.customer_id,
                                                   Contact.is_primary_contact.is_(True))
               .order_by(Contact.contact_id).limit(1).scalar_subquery())
    found = sa.union_all(
        sa.select(Contact.customer_id, Contact.contact_id, sa.literal(0).label("rank"))
        .where(sa.func.lower(Contact.email) == address),
        sa.select(Customer.customer_id, primary, sa.literal(1).label("rank"))
        .where(sa.func.lower(Customer.primary_contact_email) == address)).subquery()
    row = session.execute(sa.select(found.c.customer_id, found.c.contact_id)
                          .order_by(found.c.rank, found.c.customer_id, found.c.contact_id).limit(1)).first()
    if row is None:
        raise Invalid(f"No contact or customer has the email address {text}. Add the contact first, or use the "
                      "address the customer is known by.", "customer_email")
    return row.customer_id, row.contact_id


@dataclass
class CustomerDetails:
    customer: Customer
    contacts: list[Contact] | None = None
    contracts: list[ServiceContract] | None = None
    included: set[str] = field(default_factory=set)


INCLUDES = ("contacts", "contracts")


def customer_details(session, principal: policy.Principal, customer_id: int, include: set[str]) -> CustomerDetails:
    """A customer with the contacts and/or contracts asked for.

    :raises NotFound: no such customer. :raises Invalid: an unknown include.
    :raises Forbidden: contracts asked for without the right to read them.
    """
    unknown = sorted(include - set(INCLUDES))
    if unknown:
        raise Invalid(f"include takes {', '.join(INCLUDES)}; not {unknown[0]!r}.", "include")
    customer = visible_customer(session, principal, customer_id)
    details = CustomerDetails(customer, included=include)
    if "contacts" in include:
        details.contacts = list(session.scalars(sa.select(Contact).where(Contact.customer_id == customer_id)
                                                .order_by(Contact.contact_id)))
    if "contracts" in include:
        if not policy.may_read_contracts(principal):
            raise Forbidden("Reading contracts needs the contracts:read scope.")
        details.contracts = list(session.scalars(sa.select(ServiceContract)
                                                 .where(ServiceContract.customer_id == customer_id)
                                                 .order_by(ServiceContract.start_date)))
    return details


# --- the staff pages: the customers list, a customer's form, its contacts --------------------------

PER_PAGE = 50
MAX_PAGE = 10_000


@dataclass(frozen=True)
class CustomerFilters:
    q: str = ""
    status: AccountStatus | None = None
    tier: ServiceTier | None = None
    manager: str = ""  # "": anyone; "none": nobody; else an employee id
    page: int = 1

    def as_args(self, **override) -> dict:
        """The filters as URL arguments (only those set), with `override` applied."""
        args = {"q": self.q, "status": self.status.value if self.status else "",
                "tier": self.tier.value if self.tier else "", "manager": self.manager,
                "page": self.page if self.page > 1 else ""}
        args.update(override)
        return {k: v for k, v in args.items() if v not in ("", None, 1)}


@dataclass(frozen=True)
class CustomerRow:
    customer: Customer
    manager: str | None
    contacts: int
    active_contract: str | None  # the number of the contract in force today, if any


@dataclass(frozen=True)
class CustomerPage:
    rows: list[CustomerRow]
    page: int
    pages: int
    total: int
    managers: list[tuple[int, str]]
    filters: CustomerFilters


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def customer_list(session, principal: policy.Principal, filters: CustomerFilters, *, today=None) -> CustomerPage:
    """Customers matching the filters, by name, PER_PAGE a page; three statements whatever the data.

    Search matches the company name, its main email and its contacts' emails and names.
    :raises Forbidden: only account managers and administrators manage customers.
    """
    from portal.models import ContractStatus, Employee
    from portal.services import clock

    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators manage customers.")
    today = today or clock.today()
    conditions = []
    q = " ".join(filters.q.split())[:100]
    if q:
        pattern = _like(q)
        conditions.append(sa.or_(
            Customer.company_name.ilike(pattern), Customer.primary_contact_email.ilike(pattern),
            sa.exists().where(Contact.customer_id == Customer.customer_id, sa.or_(
                Contact.email.ilike(pattern), (Contact.first_name + " " + Contact.last_name).ilike(pattern)))))
    if filters.status:
        conditions.append(Customer.account_status == filters.status)
    if filters.tier:
        conditions.append(Customer.service_tier == filters.tier)
    if filters.manager == "none":
        conditions.append(Customer.account_manager_id.is_(None))
    elif filters.manager.isdigit() and len(filters.manager) < 10:
        conditions.append(Customer.account_manager_id == int(filters.manager))
    total = session.scalar(sa.select(sa.func.count()).select_from(Customer).where(*conditions))
    pages = max(1, -(-total // PER_PAGE))
    page = max(1, min(filters.page, pages, MAX_PAGE))
    contacts = (sa.select(sa.func.count()).where(Contact.customer_id == Customer.customer_id)
                .correlate(Customer).scalar_subquery())
    contract = (sa.select(ServiceContract.contract_number).where(
        ServiceContract.customer_id == Customer.customer_id, ServiceContract.contract_status == ContractStatus.ACTIVE,
        ServiceContract.start_date <= today, ServiceContract.end_date >= today)
        .order_by(ServiceContract.start_date.desc()).limit(1).correlate(Customer).scalar_subquery())
    rows = session.execute(
        sa.select(Customer, Employee.first_name + " " + Employee.last_name, contacts, contract)
        .outerjoin(Employee, Employee.employee_id == Customer.account_manager_id).where(*conditions)
        .order_by(sa.func.lower(Customer.company_name), Customer.customer_id)
        .limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return CustomerPage([CustomerRow(*row) for row in rows], page, pages, total, account_managers(session), filters)


@dataclass(frozen=True)
class CustomerDetailsForm:
    """A customer as the staff form gives it (None or "": not given)."""

    company_name: str = ""
    industry: str = ""
    company_size: CompanySize | None = None
    service_tier: ServiceTier | None = None
    account_status: AccountStatus | None = None
    account_manager_id: int | None = None
    primary_contact_email: str = ""
    account_health_score: Decimal | None = None
    tax_id: str = ""
    timezone: str = ""
    billing_address: str = ""
    service_address: str = ""

    @classmethod
    def of(cls, customer: Customer) -> "CustomerDetailsForm":
        return cls(**{f.name: getattr(customer, f.name) for f in fields(cls)})


def _refuse(errors: dict[str, str], order: list[str]) -> None:
    if errors:
        first = next((name for name in order if name in errors), next(iter(errors)))
        message = errors[first] if len(errors) == 1 else f"Check the {len(errors)} fields marked below."
        raise Invalid(message, first, errors)


def customer_errors(session, principal: policy.Principal, details: CustomerDetailsForm,
                    customer_id: int | None = None) -> dict[str, str]:
    """What is wrong with these details, field by field, without saving (a taken name included)."""
    values, errors = _collect({name: _field_check(session, name, getattr(details, name) or None)
                               if name in ("industry", "tax_id", "primary_contact_email", "billing_address",
                                           "service_address")
                               else _field_check(session, name, getattr(details, name))
                               for name in CUSTOMER_FIELD_ORDER})
    name = values.get("company_name")
    if name and session.scalar(sa.select(Customer.customer_id).where(
            sa.func.lower(Customer.company_name) == name.lower(),
            Customer.customer_id != (customer_id or 0))):
        errors["company_name"] = "A customer with this company name already exists."
    return errors


def add_customer(session, principal: policy.Principal, details: CustomerDetailsForm) -> Customer:
    """A new customer from the staff form (no contact yet: they are added next), through create_customer.

    :raises Forbidden, Invalid, Conflict: as create_customer (every wrong field named).
    """
    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators add customers.")
    _refuse(customer_errors(session, principal, details), CUSTOMER_FIELD_ORDER)
    return create_customer(session, principal, NewCustomer(
        company_name=details.company_name, industry=details.industry or None, service_tier=details.service_tier,
        company_size=details.company_size, account_status=details.account_status,
        billing_address=details.billing_address or None, service_address=details.service_address or None,
        primary_contact_email=details.primary_contact_email or None,
        account_health_score=details.account_health_score, tax_id=details.tax_id or None,
        timezone=details.timezone or None, account_manager_id=details.account_manager_id))


def edit_customer(session, principal: policy.Principal, customer_id: int, details: CustomerDetailsForm, *,
                  expected_updated_at: datetime | None) -> Customer:
    """Save the staff form over a customer, through update_customer (one rule, one place).

    :raises NotFound: no such customer. :raises Conflict: changed by someone else since the form was made.
    :raises Forbidden, Invalid: as update_customer (every wrong field named).
    """
    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators change customers.")
    customer = visible_customer(session, principal, customer_id, lock=True)
    if expected_updated_at is None or customer.updated_at != expected_updated_at:
        raise Conflict(f"Someone changed {customer.company_name} since you opened this page. Here it is as it is "
                       "now; make your change again.")
    _refuse(customer_errors(session, principal, details, customer_id), CUSTOMER_FIELD_ORDER)
    optional = ("industry", "tax_id", "primary_contact_email", "billing_address", "service_address")
    changes = {name: (getattr(details, name) or None) if name in optional else getattr(details, name)
               for name in CUSTOMER_FIELD_ORDER}
    return update_customer(session, principal, customer, changes, expected_updated_at=expected_updated_at)


# --- contacts --------------------------------------------------------------------------------

CONTACT_RULES = {
    "first_name": "Required, up to 100 characters.",
    "last_name": "Required, up to 100 characters.",
    "email": "Unique among all contacts and logins, whatever the case; it is also their sign-in.",
    "title": "Optional, up to 100 characters, like Office manager.",
    "department": "Optional, up to 100 characters.",
    "phone": "Optional. Digits with spaces, + - ( ), like +1 303 555 0100 x12.",
    "mobile": "Optional. Needed to be contacted by text message.",
    "communication_preference": "How we reach them about their tickets.",
    "is_primary_contact": "Sees every ticket, invoice and project of the company. One per customer: choosing "
                          "this one takes it from the present primary contact.",
    "is_billing_contact": "Receives and sees the invoices.",
    "can_approve_projects": "A project sponsor: approves or rejects project phases.",
    "can_create_tickets": "May open tickets in the portal.",
}
CONTACT_FIELD_ORDER = list(CONTACT_RULES)
CONTACT_FLAGS = ("is_primary_contact", "is_billing_contact", "can_approve_projects", "can_create_tickets")


@dataclass(frozen=True)
class ContactDetails:
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    title: str = ""
    department: str = ""
    phone: str = ""
    mobile: str = ""
    communication_preference: Any = None
    is_primary_contact: bool = False
    is_billing_contact: bool = False
    can_approve_projects: bool = False
    can_create_tickets: bool = True

    @classmethod
    def of(cls, contact: Contact) -> "ContactDetails":
        return cls(**{f.name: getattr(contact, f.name) if getattr(contact, f.name) is not None else ""
                      for f in fields(cls)})


def _contact_values(session, details: ContactDetails, contact: Contact | None) -> tuple[dict, dict[str, str]]:
    """(the values to store, the message of every wrong field). Reads, never writes."""
    from portal.models import Account, CommunicationPreference
    from portal.services.people import _phone

    errors: dict[str, str] = {}
    values, errors = _collect({
        "first_name": lambda: _text(details.first_name, "first_name", "first name", 100, required=True),
        "last_name": lambda: _text(details.last_name, "last_name", "last name", 100, required=True),
        "email": lambda: _email(details.email, "email"),
        "title": lambda: _text(details.title, "title", "title", 100),
        "department": lambda: _text(details.department, "department", "department", 100),
    })
    values["phone"] = _phone(details.phone, "phone number", "phone", errors)
    values["mobile"] = _phone(details.mobile, "mobile number", "mobile", errors)
    preference = details.communication_preference
    if preference is None:
        errors["communication_preference"] = "Choose how we should contact them."
    elif preference == CommunicationPreference.SMS and not values["mobile"] and "mobile" not in errors:
        errors["communication_preference"] = "To reach them by text message, enter their mobile number."
    elif (preference == CommunicationPreference.PHONE and not (values["phone"] or values["mobile"])
          and not {"phone", "mobile"} & set(errors)):
        errors["communication_preference"] = "To reach them by phone, enter a phone or mobile number."
    values["communication_preference"] = preference
    for flag in CONTACT_FLAGS:
        values[flag] = bool(getattr(details, flag))
    email = values.get("email")
    if email:
        contact_id = contact.contact_id if contact is not None else 0
        contact_taken, login_taken = session.execute(sa.select(
            sa.exists().where(sa.func.lower(Contact.email) == email.lower(), Contact.contact_id != contact_id),
            sa.exists().where(sa.func.lower(Account.email) == email.lower(),
                              Account.contact_id.is_distinct_from(contact.contact_id) if contact else sa.true()),
        )).one()
        if contact_taken:
            errors["email"] = "Another contact already uses this email address."
        elif login_taken:
            errors["email"] = "Another login (an employee's) already uses this email address."
    return values, errors


def contact_errors(session, principal: policy.Principal, details: ContactDetails,
                   contact_id: int | None = None) -> dict[str, str]:
    """What is wrong with a contact's details, field by field, without saving."""
    contact = session.get(Contact, contact_id) if contact_id else None
    return _contact_values(session, details, contact)[1]


def contact_of(session, principal: policy.Principal, customer_id: int, contact_id: int, *,
               lock: bool = False) -> Contact:
    """:raises NotFound: no such contact of this customer (another customer's is as good as missing)."""
    if not policy.may_see_customer(principal, customer_id):
        raise NotFound("No such contact.")
    query = sa.select(Contact).where(Contact.contact_id == contact_id, Contact.customer_id == customer_id)
    contact = session.scalar(query.with_for_update().execution_options(populate_existing=True) if lock else query)
    if contact is None:
        raise NotFound("No such contact.")
    return contact


def _take_primary(session, principal: policy.Principal, customer_id: int, contact_id: int) -> None:
    """The customer's other primary contacts stop being primary (one per customer), audited."""
    others = session.scalars(sa.select(Contact).where(
        Contact.customer_id == customer_id, Contact.is_primary_contact.is_(True),
        Contact.contact_id != contact_id).with_for_update()).all()
    for other in others:
        other.is_primary_contact = False
        session.flush()
        events.emit(session, principal, "contact.updated", other,
                    {"contact_id": other.contact_id, "customer_id": customer_id},
                    changes={"is_primary_contact": (True, False)})


def add_contact(session, principal: policy.Principal, customer_id: int, details: ContactDetails) -> Contact:
    """A new contact of the customer (no login yet: invite them next); audited with every value.

    :raises Forbidden: only account managers and administrators. :raises NotFound: no such customer.
    :raises Invalid: a field breaks a rule (every wrong field named).
    """
    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators add contacts.")
    customer = visible_customer(session, principal, customer_id, lock=True)
    values, errors = _contact_values(session, details, None)
    _refuse(errors, CONTACT_FIELD_ORDER)
    contact = Contact(customer_id=customer.customer_id, **values)
    session.add(contact)
    session.flush()
    if contact.is_primary_contact:
        _take_primary(session, principal, customer_id, contact.contact_id)
    events.emit(session, principal, "contact.created", contact,
                {"contact_id": contact.contact_id, "customer_id": customer_id},
                changes={name: (None, value.value if hasattr(value, "value") else value)
                         for name, value in values.items() if value not in (None, False, "")})
    return contact


def update_contact(session, principal: policy.Principal, customer_id: int, contact_id: int,
                   details: ContactDetails, *, expected_updated_at: datetime | None) -> Contact:
    """Change a contact (its login's email follows); audited with old and new values.

    :raises Forbidden: only account managers and administrators. :raises NotFound: no such contact here.
    :raises Conflict: someone changed the contact since the form was made.
    :raises Invalid: a field breaks a rule (every wrong field named).
    """
    from portal.models import Account

    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators change contacts.")
    contact = contact_of(session, principal, customer_id, contact_id, lock=True)
    if expected_updated_at is None or contact.updated_at != expected_updated_at:
        raise Conflict(f"Someone changed {contact.full_name} since you opened this page. Here they are as they are "
                       "now; make your change again.")
    values, errors = _contact_values(session, details, contact)
    _refuse(errors, CONTACT_FIELD_ORDER)
    changes = events.apply_changes(contact, values)
    if not changes:
        return contact
    if "email" in changes:
        session.execute(sa.update(Account).where(Account.contact_id == contact.contact_id)
                        .values(email=values["email"]).execution_options(synchronize_session="fetch"))
    session.flush()
    if changes.get("is_primary_contact", (None, False))[1]:
        _take_primary(session, principal, customer_id, contact.contact_id)
    events.emit(session, principal, "contact.updated", contact,
                {"contact_id": contact.contact_id, "customer_id": customer_id},
                changes={name: tuple(v.value if hasattr(v, "value") else v for v in pair)
                         for name, pair in changes.items()})
    session.refresh(contact)
    return contact


@dataclass(frozen=True)
class ContactRow:
    contact: Contact
    login: str  # "active", "invited", "no_login" or "inactive"


def customer_contacts(session, principal: policy.Principal, customer_id: int) -> tuple[Customer, list[ContactRow]]:
    """The customer and its contacts with the state of their login; two statements.

    :raises Forbidden: only account managers and administrators. :raises NotFound: no such customer.
    """
    from portal.models import Account
    from portal.services.people import _login_state

    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators manage contacts.")
    customer = visible_customer(session, principal, customer_id)
    rows = session.execute(sa.select(Contact, Account).outerjoin(Account, Account.contact_id == Contact.contact_id)
                           .where(Contact.customer_id == customer_id)
                           .order_by(Contact.is_primary_contact.desc(), Contact.last_name, Contact.contact_id)).all()
    return customer, [ContactRow(contact, _login_state(account)) for contact, account in rows]


def add_contact_from_mail(session, principal: policy.Principal, customer: Customer, *, email: str,
                          first_name: str, last_name: str) -> Contact:
    """The sender of an unmatched mail becomes a contact of `customer` (contacted by email, may open
    tickets), through add_contact: the same rules as the contacts page.

    :raises Forbidden: not an account manager or admin. :raises Invalid: a name is wrong (named).
    :raises Conflict: another contact or a login already uses the address.
    """
    from portal.models import CommunicationPreference

    try:
        return add_contact(session, principal, customer.customer_id, ContactDetails(
            first_name=first_name, last_name=last_name, email=email,
            communication_preference=CommunicationPreference.EMAIL, can_create_tickets=True))
    except Invalid as refused:
        taken = (refused.errors or {}).get("email", "")
        if taken.startswith("Another contact"):
            raise Conflict(f"{taken[:-1]}: attach the mail to that contact's customer instead.", "customer_id") from None
        if "already uses this email address" in taken:
            raise Conflict(f"{taken[:-1]}: this mail cannot open a customer's ticket.", "customer_id") from None
        raise
