"""The customer portal's account pages: contract usage and the contact's own profile."""

from __future__ import annotations

import dataclasses

from flask import request, url_for
from flask_login import current_user

from portal.extensions import db
from portal.services import clock, policy
from portal.services.errors import Invalid
from portal.services.people import (
    ProfileChange,
    own_contact,
    profile_errors,
    update_contact_profile,
)
from portal.services.usage import contract_usage
from portal.web.errors import error_page
from portal.web.forms import ProfileForm, page_form, parse
from portal.web.portal.blueprint import bp
from portal.web.rendering import after_change, is_htmx, render, with_toast
from portal.web.security import current_principal, require


def _usage_page(month: str | None, error: Invalid | None = None):
    principal = current_principal()
    report = contract_usage(db.session, principal, today=clock.today(), month=None if error else month,
                            page=1 if error else request.args.get("page", type=int))
    # A bad month is answered beside the picker (role="alert"), not by a toast too.
    return render("portal/usage.html", block="usage", usage=report, error=error,
                  month_value=month if error else f"{report.month:%Y-%m}")


@bp.get("/usage")
@require(policy.may_see_contract_usage)
@error_page(lambda error: _usage_page(request.args.get("month"), error), toast=False)
def usage():
    """This month's (or ?month=YYYY-MM's) included hours, use, and the work the next invoice will carry."""
    return _usage_page(request.args.get("month"))


def _profile_page(*, error=None, name_changed: bool = False):
    principal = current_principal()
    contact = own_contact(db.session, principal)
    form = page_form(ProfileForm, error, data={
        "first_name": contact.first_name, "last_name": contact.last_name, "phone": contact.phone or "",
        "mobile": contact.mobile or "", "communication_preference": contact.communication_preference})
    return render("portal/profile.html", block="profile", contact=contact, profile_form=form,
                  can_edit=policy.may_edit_profile(principal), name_changed=name_changed)


@bp.get("/profile")
@require(policy.may_use_portal)
def profile():
    return _profile_page()


def _change(form: ProfileForm) -> ProfileChange:
    return ProfileChange(first_name=form.first_name.data, last_name=form.last_name.data, phone=form.phone.data,
                         mobile=form.mobile.data, communication_preference=form.communication_preference.data)


@bp.post("/profile")
@require(policy.may_use_portal)
@error_page(lambda error: _profile_page(error=error), toast=False)  # messages stand beside the fields
def update_profile():
    principal = current_principal()
    form = parse(ProfileForm, rules=lambda form: profile_errors(_change(form)))
    contact = update_contact_profile(db.session, principal, _change(form))
    if not is_htmx():
        return after_change("Your profile is saved.", url_for("portal.profile"))
    # The header shows this request's principal, read before the change: show the new name now.
    name_changed = contact.full_name != principal.name
    current_user.principal = dataclasses.replace(principal, name=contact.full_name)
    return with_toast(_profile_page(name_changed=name_changed), "Your profile is saved.")
