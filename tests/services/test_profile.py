"""A contact's own profile (services/people.py update_contact_profile): validation, the audit trail,
and the write under the contact's row-level security."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.models import Account, AuditEvent, Contact
from portal.services import auth
from portal.services.errors import Forbidden, Invalid
from portal.services.people import COMMUNICATION_CHOICES, ProfileChange, own_contact, update_contact_profile
from portal.services.tenancy import apply_contact_scope, clear_contact_scope
from tests import commands
from tests import factories as f


def principal(session, person):
    account_id = session.scalar(sa.select(Account.account_id).where(Account.email == person.email))
    return auth.principal_for(session, account_id)


def form(**kw) -> ProfileChange:
    values = dict(first_name="Dana", last_name="Whitfield", phone="(303) 555-0100 x12", mobile="303.555.0199",
                  communication_preference="email")
    values.update(kw)
    return commands.profile(**values)


def audit_events(session, contact):
    return session.scalars(sa.select(AuditEvent).where(AuditEvent.table_name == "contacts",
                                                       AuditEvent.row_id == contact.contact_id)).all()


@pytest.fixture
def contact(session):
    return f.make_contact_login(session, first_name="Dan", last_name="Whitfield", phone="303 555 0100",
                                communication_preference="email")


def test_saves_the_fields_and_audits_old_and_new_values(session, contact):
    saved = update_contact_profile(session, principal(session, contact).at("203.0.113.9"),
                                   form(first_name="  Dana ", mobile="", communication_preference="phone"))
    assert saved is contact
    session.expire_all()
    row = session.get(Contact, contact.contact_id)
    assert (row.first_name, row.last_name, row.phone, row.mobile, row.communication_preference) == (
        "Dana", "Whitfield", "(303) 555-0100 x12", None, "phone")
    [event] = audit_events(session, contact)
    assert event.action == "contact.profile_updated" and event.actor_type == "contact"
    assert event.actor_id == contact.contact_id and str(event.ip_address) == "203.0.113.9"
    assert event.changes == {
        "first_name": {"old": "Dan", "new": "Dana"},
        "phone": {"old": "303 555 0100", "new": "(303) 555-0100 x12"},
        "communication_preference": {"old": "email", "new": "phone"},
    }  # the unchanged last name and the still-empty mobile are not "changes"


def test_nothing_changed_writes_no_audit_event(session, contact):
    update_contact_profile(session, principal(session, contact),
                           form(first_name="Dan", phone="303 555 0100", mobile=""))
    assert audit_events(session, contact) == []


@pytest.mark.parametrize("fields, field, words", [
    ({"first_name": "   "}, "first_name", "Enter your first name"),
    ({"last_name": ""}, "last_name", "Enter your last name"),
    ({"first_name": "x" * 101}, "first_name", "at most 100"),
    ({"last_name": "y" * 101}, "last_name", "at most 100"),
    ({"phone": "call me maybe"}, "phone", "in digits"),
    ({"phone": "+1 303 555 0100 0000 00"}, "phone", "at most 20"),
    ({"phone": "12"}, "phone", "in digits"),
    ({"mobile": "303<script>"}, "mobile", "in digits"),
    ({"mobile": "555-0199 ext"}, "mobile", "in digits"),
    ({"communication_preference": ""}, "communication_preference", "Choose how"),
    ({"communication_preference": "sms", "mobile": ""}, "communication_preference", "mobile number"),
    ({"communication_preference": "phone", "mobile": "", "phone": ""}, "communication_preference", "phone or mobile"),
])
def test_bad_fields_are_refused_with_a_message_beside_the_field(session, contact, fields, field, words):
    with pytest.raises(Invalid) as error:
        update_contact_profile(session, principal(session, contact), form(**fields))
    assert error.value.field == field and words in error.value.errors[field]
    session.expire_all()
    assert session.get(Contact, contact.contact_id).first_name == "Dan"
    assert audit_events(session, contact) == []


def test_every_wrong_field_is_named_at_once(session, contact):
    with pytest.raises(Invalid) as error:
        update_contact_profile(session, principal(session, contact),
                               form(first_name="", last_name="", phone="?", communication_preference=""))
    assert set(error.value.errors) == {"first_name", "last_name", "phone", "communication_preference"}
    assert error.value.field == "first_name" and error.value.message == "Check the 4 highlighted fields."


def test_the_limits_themselves_are_accepted(session, contact):
    update_contact_profile(session, principal(session, contact),
                           form(first_name="N" * 100, last_name="Ó'Brien-Smith", phone="+44 20 7946 0958",
                                mobile="(720) 555-0142", communication_preference="sms"))
    assert contact.first_name == "N" * 100 and contact.communication_preference == "sms"


def test_the_choices_are_every_value_of_the_enum_in_words(session):
    from portal.models import CommunicationPreference
    assert [value for value, _ in COMMUNICATION_CHOICES] == list(CommunicationPreference)
    assert all(label and label[0].isupper() for _, label in COMMUNICATION_CHOICES)


def test_a_suspended_customers_contact_may_not_change_it(session):
    customer = f.make_customer(session, account_status="suspended")
    contact = f.make_contact_login(session, customer=customer)
    who = principal(session, contact)
    assert who.read_only
    assert own_contact(session, who) == contact  # reading is fine
    with pytest.raises(Forbidden) as error:
        update_contact_profile(session, who, form())
    assert "suspended" in error.value.message


def test_employees_have_no_portal_profile(session):
    staff = f.make_staff(session, role="admin")
    with pytest.raises(Forbidden):
        update_contact_profile(session, principal(session, staff), form())
    with pytest.raises(Forbidden):
        own_contact(session, principal(session, staff))


def test_works_under_the_contacts_row_level_security_on_their_own_row_only(session, contact):
    """The contact's transaction runs as portal_contact: its grants allow exactly these columns, on its own row."""
    colleague = f.make_contact(session, customer=contact.customer, first_name="Other")
    who = principal(session, contact)
    apply_contact_scope(session, who.customer_id, who.contact_id)
    try:
        update_contact_profile(session, who, form(first_name="Dana", communication_preference="sms"))
        session.flush()
        # A colleague's row is out of reach even without the service's filter: RLS updates no row.
        moved = session.execute(sa.update(Contact).where(Contact.contact_id == colleague.contact_id)
                                .values(first_name="Hacked")).rowcount
        assert moved == 0
    finally:
        clear_contact_scope(session)
    session.expire_all()
    assert session.get(Contact, contact.contact_id).first_name == "Dana"
    assert session.get(Contact, colleague.contact_id).first_name == "Other"
    [event] = audit_events(session, contact)
    assert event.changes["communication_preference"] == {"old": "email", "new": "sms"}


def test_the_contacts_role_may_not_change_its_flags_or_email(session, savepoint, contact):
    who = principal(session, contact)
    apply_contact_scope(session, who.customer_id, who.contact_id)
    try:
        for column in ("email", "is_primary_contact", "customer_id"):
            value = {"email": "'x@example.com'", "is_primary_contact": "true", "customer_id": "customer_id"}[column]
            error = savepoint.fails(f"UPDATE contacts SET {column} = {value} WHERE contact_id = {contact.contact_id}")
            assert error is not None and "permission denied" in str(error), column
    finally:
        clear_contact_scope(session)
