"""Customers, their contacts and contracts, as automation sees them: create a customer with its
primary contact in one transaction, update it, find a customer by an email address, read contracts.

Small and generic on purpose (the staff pages for customers come with their own issue; the lead
reconciles both into one module). Every function takes the principal first and asks the policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
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


# Fields of a customer that may be changed, with their longest length (None: an enum or free text).
CUSTOMER_FIELDS: dict[str, int | None] = {
    "company_name": 255, "industry": 100, "service_tier": None, "company_size": None, "account_status": None,
    "primary_contact_email": 255, "billing_address": None, "service_address": None, "timezone": 50,
    "tax_id": 20,
}


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
    customer = session.scalar(query.with_for_update() if lock else query)
    if customer is None:
        raise NotFound("No such customer.")
    return customer


def update_customer(session, principal: policy.Principal, customer: Customer, changes: dict[str, Any]) -> Customer:
    """Change some of a customer's fields (CUSTOMER_FIELDS; enums already typed).

    :raises Forbidden: not allowed to manage customers. :raises Invalid: a value is wrong (named).
    :raises Conflict: the new company name is taken.
    """
    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators change customers.")
    unknown = sorted(set(changes) - set(CUSTOMER_FIELDS))
    if unknown:
        raise Invalid(f"{unknown[0]} cannot be changed here.", unknown[0])
    checks = {}
    for name, value in changes.items():
        longest = CUSTOMER_FIELDS[name]
        if name == "primary_contact_email":
            checks[name] = (lambda v=value: _email(v, "primary_contact_email") if v else None)
        elif longest is None and name in ("billing_address", "service_address"):
            checks[name] = (lambda v=value, n=name: _text(v, n, n.replace("_", " "), 2000))
        elif longest is None:
            checks[name] = (lambda v=value, n=name: _required_choice(v, n))
        else:
            checks[name] = (lambda v=value, n=name, m=longest: _text(v, n, n.replace("_", " "), m,
                                                                     required=n in ("company_name", "timezone")))
    values, errors = _collect(checks)
    _raise(errors)
    if "timezone" in values:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(values["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise Invalid("Enter a time zone name like America/Denver.", "timezone") from None
    if "company_name" in values and session.scalar(sa.select(Customer.customer_id).where(
            sa.func.lower(Customer.company_name) == values["company_name"].lower(),
            Customer.customer_id != customer.customer_id)):
        raise Conflict("A customer with this company name already exists.", "company_name")
    changed = {name: (getattr(customer, name), value) for name, value in values.items()
               if getattr(customer, name) != value}
    for name, (_, value) in changed.items():
        setattr(customer, name, value)
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
    contact = session.execute(sa.select(Contact.contact_id, Contact.customer_id)
                              .where(sa.func.lower(Contact.email) == text.lower())).first()
    if contact is not None:
        return contact.customer_id, contact.contact_id
    customer = session.execute(
        sa.select(Customer.customer_id).where(sa.func.lower(Customer.primary_contact_email) == text.lower())
        .order_by(Customer.customer_id).limit(1)).first()
    if customer is None:
        raise Invalid(f"No contact or customer has the email address {text}. Add the contact first, or use the "
                      "address the customer is known by.", "customer_email")
    primary = session.scalar(sa.select(Contact.contact_id).where(
        Contact.customer_id == customer.customer_id, Contact.is_primary_contact.is_(True))
        .order_by(Contact.contact_id).limit(1))
    return customer.customer_id, primary


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


def add_contact_from_mail(session, principal: policy.Principal, customer: Customer, *, email: str,
                          first_name: str, last_name: str) -> Contact:
    """The sender of an unmatched mail becomes a contact of `customer` (contacted by email, may open tickets).

    :raises Forbidden: not an account manager or admin. :raises Invalid: a name or the address is wrong (named).
    :raises Conflict: another contact already uses the address.
    """
    if not policy.may_manage_customers(principal):
        raise Forbidden("Only account managers and administrators add contacts.")
    values, errors = _collect({
        "first_name": lambda: _text(first_name, "first_name", "first name", 100, required=True),
        "last_name": lambda: _text(last_name, "last_name", "last name", 100, required=True),
        "email": lambda: _email(email, "email"),
    })
    _raise(errors)
    if session.scalar(sa.select(Contact.contact_id).where(sa.func.lower(Contact.email) == values["email"].lower())):
        raise Conflict("Another contact already uses this email address: attach the mail to that contact's "
                       "customer.", "customer_id")
    person = Contact(customer_id=customer.customer_id, can_create_tickets=True, **values)
    session.add(person)
    session.flush()
    events.emit(session, principal, "contact.created", person,
                {"contact_id": person.contact_id, "customer_id": customer.customer_id},
                changes={"email": (None, person.email)})
    return person
