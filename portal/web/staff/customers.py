"""Customers, their contacts and contracts, for account managers and admins (/staff/customers).

Technicians keep the read-only customer page (staff.show_customer, without money). Every change
goes through portal/services/crm.py and contracts.py, the services the REST API uses too.
"""

from __future__ import annotations

from flask import Blueprint, request, url_for

from portal.extensions import db
from portal.services import auth, clock, contracts, crm, policy
from portal.services.errors import Conflict
from portal.services.sla import coverage_label
from portal.web.errors import error_page
from portal.web.forms import (
    ContactForm,
    ContractForm,
    CustomerFilterForm,
    CustomerForm,
    InviteForm,
    RenewForm,
    page_form,
    parse,
)
from portal.web.rendering import after_change, render
from portal.web.security import current_principal, require

bp = Blueprint("customers", __name__, url_prefix="/staff/customers")


def _stale(error) -> bool:
    """A refusal because the row changed meanwhile: the form is made afresh from the row as it is now."""
    return isinstance(error, Conflict) and not error.field


def _status(error) -> int:
    return (409 if isinstance(error, Conflict) else 422) if error else 200


# --- the list --------------------------------------------------------------------------------

def _customer_list(form: CustomerFilterForm, filters: crm.CustomerFilters, error=None):
    listing = crm.customer_list(db.session, current_principal(), filters)
    form.manager.options = [("none", "Nobody")] + [(str(i), name) for i, name in listing.managers]
    if error is not None:
        for name, message in error.errors.items():
            if name in form:
                form[name].errors = [message]
    return render("staff/customers/list.html", block="customer_results", listing=listing, filters=filters,
                  form=form, status=422 if error else 200)


@bp.get("")
@require(policy.may_manage_customers)
@error_page(lambda error: _customer_list(CustomerFilterForm(formdata=request.args), crm.CustomerFilters(), error),
            toast=False)
def list_customers():
    """Every customer, searchable and filtered in the URL (active search for htmx), 50 a page."""
    form = parse(CustomerFilterForm, request.args)
    return _customer_list(form, form.filters())


# --- a customer ------------------------------------------------------------------------------

def _customer_form_page(customer_id: int | None = None, error=None):
    principal = current_principal()
    customer = crm.visible_customer(db.session, principal, customer_id) if customer_id else None
    if customer is not None and (error is None or _stale(error)):
        form = page_form(CustomerForm, data={**crm.CustomerDetailsForm.of(customer).__dict__,
                                             "updated_at": customer.updated_at},
                         account_manager_id=crm.account_managers(db.session))
    elif error is None:
        form = page_form(CustomerForm, data={"account_status": "prospect", "service_tier": "breakfix",
                                             "company_size": "small", "account_health_score": crm.HEALTH_DEFAULT,
                                             "timezone": "America/Denver",
                                             "account_manager_id": principal.employee_id},
                         account_manager_id=crm.account_managers(db.session))
    else:
        form = page_form(CustomerForm, error, account_manager_id=crm.account_managers(db.session))
    return render("staff/customers/form.html", form=form, customer=customer, error=error, stale=_stale(error),
                  status=_status(error))


@bp.route("/new", methods=["GET", "POST"])
@require(policy.may_manage_customers)
@error_page(lambda error: _customer_form_page(None, error), toast=False)
def new_customer():
    if request.method == "GET":
        return _customer_form_page()
    principal = current_principal()
    form = parse(CustomerForm, rules=lambda form: crm.customer_errors(db.session, principal, form.details()))
    customer = crm.add_customer(db.session, principal, form.details())
    return after_change(f"{customer.company_name} is a customer. Add its contacts next.",
                        url_for("customers.list_contacts", customer_id=customer.customer_id))


@bp.get("/<int:customer_id>/edit")
@require(policy.may_manage_customers)
def edit_customer(customer_id: int):
    return _customer_form_page(customer_id)


@bp.post("/<int:customer_id>/edit")
@require(policy.may_manage_customers)
@error_page(lambda error, customer_id: _customer_form_page(customer_id, error), toast=False)
def update_customer(customer_id: int):
    principal = current_principal()
    form = parse(CustomerForm, rules=lambda form: crm.customer_errors(db.session, principal, form.details(),
                                                                      customer_id))
    customer = crm.edit_customer(db.session, principal, customer_id, form.details(),
                                 expected_updated_at=form.updated_at.data)
    return after_change(f"{customer.company_name} is saved.", url_for("staff.show_customer", customer_id=customer_id))


# --- contacts --------------------------------------------------------------------------------

def _contacts_page(customer_id: int, error=None, *, invite_error=None):
    customer, rows = crm.customer_contacts(db.session, current_principal(), customer_id)
    form = page_form(ContactForm, error, data={"can_create_tickets": True, "communication_preference": "email"})
    return render("staff/customers/contacts.html", customer=customer, rows=rows, form=form, invite=InviteForm(),
                  error=error, invite_error=invite_error, status=_status(error or invite_error))


@bp.get("/<int:customer_id>/contacts")
@require(policy.may_manage_customers)
def list_contacts(customer_id: int):
    """The customer's contacts with their flags and login, and the form to add one."""
    return _contacts_page(customer_id)


@bp.post("/<int:customer_id>/contacts")
@require(policy.may_manage_customers)
@error_page(lambda error, customer_id: _contacts_page(customer_id, error), toast=False)
def add_contact(customer_id: int):
    principal = current_principal()
    form = parse(ContactForm, rules=lambda form: crm.contact_errors(db.session, principal, form.details()))
    contact = crm.add_contact(db.session, principal, customer_id, form.details())
    return after_change(f"{contact.full_name} is a contact. Invite them so they can sign in to the portal.",
                        url_for("customers.list_contacts", customer_id=customer_id))


def _contact_page(customer_id: int, contact_id: int, error=None):
    principal = current_principal()
    contact = crm.contact_of(db.session, principal, customer_id, contact_id)
    if error is None or _stale(error):
        form = page_form(ContactForm, data={**crm.ContactDetails.of(contact).__dict__,
                                            "updated_at": contact.updated_at})
    else:
        form = page_form(ContactForm, error)
    return render("staff/customers/contact.html", customer=contact.customer, contact=contact, form=form,
                  error=error, stale=_stale(error), status=_status(error))


@bp.get("/<int:customer_id>/contacts/<int:contact_id>")
@require(policy.may_manage_customers)
def edit_contact(customer_id: int, contact_id: int):
    return _contact_page(customer_id, contact_id)


@bp.post("/<int:customer_id>/contacts/<int:contact_id>")
@require(policy.may_manage_customers)
@error_page(lambda error, customer_id, contact_id: _contact_page(customer_id, contact_id, error), toast=False)
def update_contact(customer_id: int, contact_id: int):
    principal = current_principal()
    form = parse(ContactForm, rules=lambda form: crm.contact_errors(db.session, principal, form.details(),
                                                                    contact_id))
    contact = crm.update_contact(db.session, principal, customer_id, contact_id, form.details(),
                                 expected_updated_at=form.updated_at.data)
    return after_change(f"{contact.full_name} is saved.", url_for("customers.list_contacts", customer_id=customer_id))


@bp.post("/<int:customer_id>/contacts/<int:contact_id>/invite")
@require(policy.may_invite_contacts)
@error_page(lambda error, customer_id, contact_id: _contacts_page(customer_id, invite_error=error))
def invite_contact(customer_id: int, contact_id: int):
    """The portal invitation (auth.invite: the worker mails a link to choose a password)."""
    principal = current_principal()
    crm.contact_of(db.session, principal, customer_id, contact_id)
    account = auth.invite(db.session, principal, contact_id=contact_id)
    return after_change(f"Invitation sent to {account.email}. The link works once, for 24 hours.",
                        url_for("customers.list_contacts", customer_id=customer_id))


# --- contracts -------------------------------------------------------------------------------

@bp.get("/<int:customer_id>/contracts")
@require(policy.may_manage_contracts)
def list_contracts(customer_id: int):
    customer, rows = contracts.customer_contracts(db.session, current_principal(), customer_id)
    return render("staff/customers/contracts.html", customer=customer, contracts=rows, today=clock.today(),
                  renewed_by=contracts.renewals_among(rows),
                  coverage=lambda contract: coverage_label(contract, customer.timezone))


def _contract_page(customer_id: int, contract_id: int | None = None, error=None):
    principal = current_principal()
    customer = crm.visible_customer(db.session, principal, customer_id)
    contract = contracts.contract_of(db.session, principal, customer_id, contract_id) if contract_id else None
    if contract is not None and (error is None or _stale(error)):
        form = page_form(ContractForm, data={**contracts.ContractTerms.of(contract).__dict__,
                                             "updated_at": contract.updated_at})
    elif error is None:
        start = clock.today()
        form = page_form(ContractForm, data={
            "service_tier": customer.service_tier, "contract_status": "active", "start_date": start,
            "end_date": contracts.one_year_from(start), **contracts.NEW_CONTRACT_DEFAULTS,
            **contracts.default_coverage(customer.service_tier)})
    else:
        form = page_form(ContractForm, error)
    return render("staff/customers/contract.html", customer=customer, contract=contract, form=form, error=error,
                  stale=_stale(error), status=_status(error))


@bp.route("/<int:customer_id>/contracts/new", methods=["GET", "POST"])
@require(policy.may_manage_contracts)
@error_page(lambda error, customer_id: _contract_page(customer_id, None, error), toast=False)
def new_contract(customer_id: int):
    if request.method == "GET":
        return _contract_page(customer_id)
    principal = current_principal()
    form = parse(ContractForm, rules=lambda form: contracts.contract_errors(db.session, principal, customer_id,
                                                                            form.terms()))
    contract = contracts.create_contract(db.session, principal, customer_id, form.terms())
    return after_change(f"{contract.contract_number} is made.",
                        url_for("customers.list_contracts", customer_id=customer_id))


@bp.get("/<int:customer_id>/contracts/<int:contract_id>")
@require(policy.may_manage_contracts)
def edit_contract(customer_id: int, contract_id: int):
    return _contract_page(customer_id, contract_id)


@bp.post("/<int:customer_id>/contracts/<int:contract_id>")
@require(policy.may_manage_contracts)
@error_page(lambda error, customer_id, contract_id: _contract_page(customer_id, contract_id, error), toast=False)
def update_contract(customer_id: int, contract_id: int):
    principal = current_principal()
    form = parse(ContractForm, rules=lambda form: contracts.contract_errors(db.session, principal, customer_id,
                                                                            form.terms(), contract_id))
    contract = contracts.update_contract(db.session, principal, customer_id, contract_id, form.terms(),
                                         expected_updated_at=form.updated_at.data)
    return after_change(f"{contract.contract_number} is saved.",
                        url_for("customers.list_contracts", customer_id=customer_id))


def _renewal_page(customer_id: int, contract_id: int, error=None):
    renewal = contracts.renewal_of(db.session, current_principal(), customer_id, contract_id)
    return render("staff/customers/renew.html", customer=renewal.contract.customer, renewal=renewal,
                  form=RenewForm(formdata=None, data={"updated_at": renewal.contract.updated_at}), error=error,
                  status=_status(error))


@bp.get("/<int:customer_id>/contracts/<int:contract_id>/renew")
@require(policy.may_manage_contracts)
def renewal_preview(customer_id: int, contract_id: int):
    """The renewal before it is made: the new term and the price change."""
    return _renewal_page(customer_id, contract_id)


@bp.post("/<int:customer_id>/contracts/<int:contract_id>/renew")
@require(policy.may_manage_contracts)
@error_page(lambda error, customer_id, contract_id: _renewal_page(customer_id, contract_id, error))
def renew_contract(customer_id: int, contract_id: int):
    form = parse(RenewForm)
    contract = contracts.renew_contract(db.session, current_principal(), customer_id, contract_id,
                                        expected_updated_at=form.updated_at.data)
    return after_change(f"{contract.contract_number} renews it from {contract.start_date:%-d %b %Y}.",
                        url_for("customers.list_contracts", customer_id=customer_id))
