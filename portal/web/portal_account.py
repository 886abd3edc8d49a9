"""The customer portal's account pages (routes on the portal blueprint of portal.web.customer):
contract usage and the contact's own profile."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user

from portal.extensions import db
from portal.services import policy
from portal.services.errors import DomainError, Forbidden, Invalid, NotFound
from portal.services.people import COMMUNICATION_CHOICES, ProfileForm, own_contact, update_contact_profile
from portal.services.usage import contract_usage
from portal.web.customer import bp
from portal.web.rendering import is_htmx, render, with_toast
from portal.web.security import client_ip, current_principal, require


def _today() -> date:
    """Today where the portal's people are (work dates are calendar days, not UTC instants)."""
    return datetime.now(ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])).date()


@bp.get("/usage")
@require(policy.may_see_contract_usage)
def usage():
    """This month's (or ?month=YYYY-MM's) included hours, use, and the work the next invoice will carry."""
    principal = current_principal()
    today = _today()
    month = request.args.get("month")
    page = request.args.get("page", type=int)
    error = None
    try:
        report = contract_usage(db.session, principal, today=today, month=month, page=page)
    except Invalid as exc:
        error = exc
        report = contract_usage(db.session, principal, today=today, page=1)
    except Forbidden:
        abort(403)
    # A bad month is answered beside the picker (role="alert"), not by a toast too.
    return render("portal/usage.html", block="usage", usage=report, error=error,
                  month_value=month if error else f"{report.month:%Y-%m}", status=422 if error else 200)


def _profile_page(contact, *, form: dict | None = None, errors: dict | None = None, status: int = 200,
                  name_changed: bool = False):
    principal = current_principal()
    values = form if form is not None else {
        "first_name": contact.first_name, "last_name": contact.last_name, "phone": contact.phone or "",
        "mobile": contact.mobile or "", "communication_preference": contact.communication_preference.value,
    }
    return render("portal/profile.html", block="profile", contact=contact, values=values, errors=errors or {},
                  choices=[(value.value, label) for value, label in COMMUNICATION_CHOICES],
                  can_edit=policy.may_edit_profile(principal), name_changed=name_changed, status=status)


@bp.get("/profile")
@require(policy.may_use_portal)
def profile():
    try:
        contact = own_contact(db.session, current_principal())
    except NotFound:
        abort(404)
    return _profile_page(contact)


@bp.post("/profile")
@require(policy.may_use_portal)
def update_profile():
    principal = current_principal()
    form = ProfileForm(**{name: request.form.get(name, "") for name in ProfileForm.__dataclass_fields__})
    try:
        contact = update_contact_profile(db.session, principal, form, ip=client_ip())
    except DomainError as error:
        db.session.rollback()
        if isinstance(error, Forbidden):
            abort(403, description=error.message)
        if isinstance(error, NotFound):
            abort(404)
        # The messages stand beside their fields (role="alert"); a toast would only cover the form on a phone.
        return _profile_page(own_contact(db.session, principal), form=dataclasses.asdict(form), errors=error.errors,
                             status=422)
    db.session.commit()
    if not is_htmx():
        flash("Your profile is saved.", "success")
        return redirect(url_for("portal.profile"), code=303)
    # The header shows this request's principal, read before the change: show the new name now.
    name_changed = contact.full_name != principal.name
    current_user.principal = dataclasses.replace(principal, name=contact.full_name)
    return with_toast(_profile_page(contact, name_changed=name_changed), "Your profile is saved.")
