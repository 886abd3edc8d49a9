"""People and their logins, for the staff page that invites them; a contact's own profile."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from portal.models import Account, CommunicationPreference, Contact, Customer, Employee
from portal.services import events, policy
from portal.services.errors import Forbidden, Invalid, NotFound

PER_PAGE = 25
MAX_PAGE = 10_000


@dataclass(frozen=True)
class PersonRow:
    person: Employee | Contact
    company: str | None
    login: str  # "active", "invited", "no_login" or "inactive"


@dataclass(frozen=True)
class PeoplePage:
    kind: str
    rows: list[PersonRow]
    page: int
    pages: int
    total: int


def _login_state(account: Account | None) -> str:
    if account is None:
        return "no_login"
    if not account.is_active:
        return "inactive"
    return "active" if account.password_hash else "invited"


def people_with_logins(session, principal: policy.Principal, kind: str, page: int) -> PeoplePage:
    """Employees (admins only) or customers' contacts, with the state of their login; two queries.

    :raises Forbidden: the principal may invite neither.
    """
    if not policy.may_manage_people(principal):
        raise Forbidden("Only account managers and admins manage logins.")
    if kind != "employees" or not policy.may_invite_employees(principal):
        kind = "contacts"
    if kind == "employees":
        query = (sa.select(Employee, Account, sa.null()).outerjoin(Account, Account.employee_id == Employee.employee_id)
                 .order_by(Employee.last_name, Employee.first_name, Employee.employee_id))
    else:
        query = (sa.select(Contact, Account, Customer.company_name)
                 .join(Customer, Customer.customer_id == Contact.customer_id)
                 .outerjoin(Account, Account.contact_id == Contact.contact_id)
                 .order_by(Customer.company_name, Contact.last_name, Contact.contact_id))
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))
    pages = max(1, -(-total // PER_PAGE))
    page = max(1, min(page, pages, MAX_PAGE))
    rows = session.execute(query.limit(PER_PAGE).offset((page - 1) * PER_PAGE)).all()
    return PeoplePage(kind, [PersonRow(person, company, _login_state(account)) for person, account, company in rows],
                      page, pages, total)


# --- a contact's own profile ----------------------------------------------------------------

# The enum's values in words, in the order the form offers them.
COMMUNICATION_CHOICES = [
    (CommunicationPreference.EMAIL, "Email"),
    (CommunicationPreference.PHONE, "Phone call"),
    (CommunicationPreference.SMS, "Text message (SMS)"),
]
NAME_MAX = 100
PHONE_MAX = 20
# Digits with the usual separators, optionally "+" first and an extension: "+1 303 555 0100 x12".
PHONE_PATTERN = re.compile(r"\+?[0-9 ()./-]+(?:\s*(?:ext\.?|x)\s*[0-9]+)?", re.IGNORECASE)
PROFILE_FIELDS = ("first_name", "last_name", "phone", "mobile", "communication_preference")


@dataclass(frozen=True)
class ProfileChange:
    """What a contact may change of themselves; the preference is None when none was chosen."""

    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    mobile: str = ""
    communication_preference: CommunicationPreference | None = None


def own_contact(session, principal: policy.Principal) -> Contact:
    """The signed-in contact's own row.

    :raises Forbidden: the principal is not a contact.
    :raises NotFound: the contact no longer exists.
    """
    if not policy.may_use_portal(principal):
        raise Forbidden("Only a customer's contacts have a portal profile.")
    contact = session.scalar(sa.select(Contact).where(Contact.contact_id == principal.contact_id,
                                                      Contact.customer_id == principal.customer_id))
    if contact is None:
        raise NotFound("No such contact.")
    return contact


def _name(value: str, label: str, field: str, errors: dict[str, str]) -> str:
    text = " ".join((value or "").split())
    if not text:
        errors[field] = f"Enter your {label}."
    elif len(text) > NAME_MAX:
        errors[field] = f"Your {label} can be at most {NAME_MAX} characters."
    return text


def _phone(value: str, label: str, field: str, errors: dict[str, str]) -> str | None:
    text = " ".join((value or "").split())
    if not text:
        return None
    if len(text) > PHONE_MAX:
        errors[field] = f"The {label} can be at most {PHONE_MAX} characters."
    elif not PHONE_PATTERN.fullmatch(text) or sum(c.isdigit() for c in text) < 4:
        errors[field] = f"Enter the {label} in digits, for example +1 303 555 0100 x12."
    return text


def profile_errors(form: ProfileChange) -> dict[str, str]:
    """What is wrong with a profile change, field by field, without saving anything."""
    return _profile_values(form)[1]


def _profile_values(form: ProfileChange) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    values = {
        "first_name": _name(form.first_name, "first name", "first_name", errors),
        "last_name": _name(form.last_name, "last name", "last_name", errors),
        "phone": _phone(form.phone, "phone number", "phone", errors),
        "mobile": _phone(form.mobile, "mobile number", "mobile", errors),
    }
    preference = form.communication_preference
    if preference is None:
        errors["communication_preference"] = "Choose how we should contact you."
    else:
        values["communication_preference"] = preference
        if preference == CommunicationPreference.SMS and not values["mobile"] and "mobile" not in errors:
            errors["communication_preference"] = "To be contacted by text message, enter your mobile number."
        elif (preference == CommunicationPreference.PHONE and not (values["phone"] or values["mobile"])
              and not {"phone", "mobile"} & set(errors)):
            errors["communication_preference"] = "To be contacted by phone, enter a phone or mobile number."
    return values, errors


def update_contact_profile(session, principal: policy.Principal, form: ProfileChange) -> Contact:
    """Save the signed-in contact's name, phones and communication preference; audited with old and new values.

    :raises Forbidden: not a contact, or a contact of a suspended (read-only) customer.
    :raises Invalid: a field is wrong; `errors` names every wrong field.
    """
    if not policy.may_edit_profile(principal):
        raise Forbidden("Your company's account is suspended, so your profile cannot be changed. "
                        "Contact your account manager to restore it.")
    contact = own_contact(session, principal)
    values, errors = _profile_values(form)
    if errors:
        field = next(name for name in PROFILE_FIELDS if name in errors)
        message = errors[field] if len(errors) == 1 else f"Check the {len(errors)} highlighted fields."
        raise Invalid(message, field, errors)
    changes = events.apply_changes(contact, values)
    if changes:
        session.flush()
        events.emit(session, principal, "contact.profile_updated", contact, changes=changes)
    return contact
