"""The staff workspace (/staff): home, people and their logins, security settings, a customer."""

from __future__ import annotations

from flask import Blueprint, abort, request, url_for

from portal.extensions import db
from portal.services import auth, choices, clock, policy, statements
from portal.services.dashboards import customer_overview, role_home, staff_summary
from portal.services.people import people_with_logins
from portal.web.errors import error_page
from portal.web.forms import InviteForm, SecuritySettingsForm
from portal.web.rendering import after_change, render
from portal.web.security import current_principal, require

bp = Blueprint("staff", __name__, url_prefix="/staff")


@bp.get("/")
@require(policy.may_use_staff)
def home():
    principal = current_principal()
    today = clock.today()
    return render("staff/home.html", summary=staff_summary(db.session, principal, today),
                  home=role_home(db.session, principal, today, clock.now()), now=clock.now(),
                  reports=policy.may_read_any_report(principal))


def _people_page(kind: str, error=None):
    principal = current_principal()
    listing = people_with_logins(db.session, principal, kind, request.args.get("page", 1, type=int) or 1)
    return render("staff/people.html", listing=listing, form=InviteForm(), error=error,
                  may_invite_employees=policy.may_invite_employees(principal))


@bp.get("/people")
@require(policy.may_manage_people)
def people():
    """Employees (admins) and contacts (account managers, admins) with the state of their login."""
    return _people_page(request.args.get("kind", "contacts"))


def _invite(kind: str, person_id: int):
    ids = {"employee_id": person_id} if kind == "employees" else {"contact_id": person_id}
    account = auth.invite(db.session, current_principal(), **ids)
    return after_change(f"Invitation sent to {account.email}. The link works once, for 24 hours.",
                        url_for("staff.people", kind=kind))


@bp.post("/people/employees/<int:employee_id>/invite")
@require(policy.may_invite_employees)
@error_page(lambda error, employee_id: _people_page("employees", error))
def invite_employee(employee_id: int):
    return _invite("employees", employee_id)


@bp.post("/people/contacts/<int:contact_id>/invite")
@require(policy.may_invite_contacts)
@error_page(lambda error, contact_id: _people_page("contacts", error))
def invite_contact(contact_id: int):
    return _invite("contacts", contact_id)


@bp.route("/security", methods=["GET", "POST"])
@require(policy.may_administer)
def security_settings():
    principal = current_principal()
    form = SecuritySettingsForm()
    if form.validate_on_submit():
        auth.set_two_factor_requirement(db.session, principal, form.require_two_factor.data)
        return after_change("Security settings saved.", url_for("staff.security_settings"))
    if request.method == "GET":
        form.require_two_factor.data = auth.two_factor_required_for_employees(db.session)
    return render("staff/security.html", form=form,
                  employees_without_two_factor=auth.employees_without_two_factor(db.session),
                  status=422 if request.method == "POST" else 200)


@bp.get("/pickers/customer-filter")
@require(policy.may_read_customers)
def customer_filter_options():
    """A filter's customer choices matching what was typed (htmx active search, staff/_customer_filter.html)."""
    q = request.args.get("customer_q", "")
    selected = request.args.get("customer_id", type=int)
    customers, more = choices.customer_filter(db.session, q, selected=selected)
    return render("staff/_customer_filter_options.html", customers=customers, more=more, selected=selected,
                  customer_q=q.strip())


@bp.get("/customers/<int:customer_id>")
@require(policy.may_use_staff)
def show_customer(customer_id: int):
    """A customer at a glance: contacts, contracts, open tickets, recent invoices (billing roles)."""
    overview = customer_overview(db.session, current_principal(), customer_id)
    if overview is None:
        abort(404)
    return render("staff/customer.html", overview=overview, now=clock.now(),
                  outstanding=statements.outstanding_amount)  # the one rule: nothing owed on a cancelled invoice
