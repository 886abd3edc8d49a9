"""The staff workspace (/staff): home, people and their logins, security settings."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for

from portal.extensions import db, mailer
from portal.services import auth, policy
from portal.services.dashboards import customer_overview, staff_summary
from portal.services.people import people_with_logins
from portal.services.errors import DomainError
from portal.web.forms import InviteForm, SecuritySettingsForm
from portal.web.rendering import render
from portal.web.security import client_ip, current_principal, require

bp = Blueprint("staff", __name__, url_prefix="/staff")

@bp.get("/")
@require(policy.may_use_staff)
def home():
    principal = current_principal()
    return render("staff/home.html", summary=staff_summary(db.session, principal, date.today()))


@bp.get("/people")
@require(policy.may_manage_people)
def people():
    """Employees (admins) and contacts (account managers, admins) with the state of their login."""
    principal = current_principal()
    try:
        page = int(request.args.get("page", 1))
    except ValueError:
        page = 1
    listing = people_with_logins(db.session, principal, request.args.get("kind", "contacts"), page)
    return render("staff/people.html", listing=listing, form=InviteForm(),
                  may_invite_employees=policy.may_invite_employees(principal))


def _invite(kind: str, person_id: int):
    principal = current_principal()
    form = InviteForm()
    if not form.validate_on_submit():
        abort(400)
    ids = {"employee_id": person_id} if kind == "employees" else {"contact_id": person_id}
    try:
        account, token = auth.invite(db.session, principal, secret_key=current_app.secret_key,
                                     now=datetime.now(UTC), ip=client_ip(), **ids)
    except DomainError as error:
        db.session.rollback()
        if error.status in (403, 404):
            abort(error.status)
        flash(error.message, "error")
    else:
        db.session.commit()
        link = url_for("auth.accept_invitation", token=token, _external=True)
        mailer.send(account.email, "Your TechServ Portal login",
                    f"Hello {account.display_name},\n\n{principal.name} invited you to TechServ Portal. "
                    f"Open this link within 24 hours to choose your password:\n\n{link}\n\n"
                    "The link works once. Afterwards, sign in with this email address.\n")
        flash(f"Invitation sent to {account.email}. The link works once, for 24 hours.", "success")
    return redirect(url_for("staff.people", kind=kind), code=303)


@bp.post("/people/employees/<int:employee_id>/invite")
@require(policy.may_invite_employees)
def invite_employee(employee_id: int):
    return _invite("employees", employee_id)


@bp.post("/people/contacts/<int:contact_id>/invite")
@require(policy.may_invite_contacts)
def invite_contact(contact_id: int):
    return _invite("contacts", contact_id)


@bp.route("/security", methods=["GET", "POST"])
@require(policy.may_administer)
def security_settings():
    principal = current_principal()
    form = SecuritySettingsForm()
    if form.validate_on_submit():
        auth.set_two_factor_requirement(db.session, principal, form.require_two_factor.data, ip=client_ip())
        db.session.commit()
        flash("Security settings saved.", "success")
        return redirect(url_for("staff.security_settings"), code=303)
    if request.method == "GET":
        form.require_two_factor.data = auth.two_factor_required_for_employees(db.session)
    return render("staff/security.html", form=form,
                  employees_without_two_factor=auth.employees_without_two_factor(db.session),
                  status=422 if request.method == "POST" else 200)


@bp.get("/customers/<int:customer_id>")
@require(policy.may_use_staff)
def show_customer(customer_id: int):
    """A customer at a glance: contacts, contracts, open tickets, recent invoices (billing roles)."""
    principal = current_principal()
    overview = customer_overview(db.session, principal, customer_id)
    if overview is None:
        abort(404)
    return render("staff/customer.html", overview=overview, now=datetime.now(UTC))
