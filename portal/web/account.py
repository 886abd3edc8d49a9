"""My account: change my password; two-factor sign-in for staff."""

from __future__ import annotations

import base64
import dataclasses
import time

import segno
from flask import Blueprint, session, url_for
from flask_login import login_user

from portal.extensions import db
from portal.models import Account
from portal.services import auth, policy
from portal.web.errors import error_page
from portal.web.forms import ChangePasswordForm, DisableTwoFactorForm, EnableTwoFactorForm, apply_domain_error
from portal.web.rendering import after_change, render
from portal.web.security import SignedInUser, current_principal, require, signed_in


bp = Blueprint("account", __name__, url_prefix="/account")


def _password_page(error=None):
    form = ChangePasswordForm()
    if error is not None:
        apply_domain_error(form, error)
    return render("account/password.html", form=form)


@bp.route("/password", methods=["GET", "POST"])
@require(signed_in)
@error_page(lambda error: _password_page(error), toast=False)
def change_password():
    principal = current_principal()
    form = ChangePasswordForm()
    if not form.validate_on_submit():
        return render("account/password.html", form=form, status=422 if form.is_submitted() else 200)
    account = auth.change_password(db.session, principal, form.current_password.data, form.new_password.data)
    # Other sessions are out (the version moved on); this one stays, on the new version.
    login_user(SignedInUser(dataclasses.replace(principal, session_version=account.session_version)))
    session["last_seen"] = time.time()
    return after_change("Your password is changed. Other devices have been signed out.",
                        url_for("account.change_password"))


def _qr_data_uri(uri: str) -> str:
    svg = segno.make(uri, error="m").svg_inline(scale=5, dark="#111", light="#fff")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _two_factor_page(enable_form=None, disable_form=None, status: int = 200):
    """The two-factor page: enrolment (QR code and key) when off, the switch-off form when on.

    Opening it starts an enrolment (a secret not in force until confirmed): the one write a GET
    makes here, committed with the request like any other.
    """
    principal = current_principal()
    account = db.session.get(Account, principal.account_id)
    context = {"enabled": account.totp_enabled, "enable_form": enable_form or EnableTwoFactorForm(),
               "disable_form": disable_form or DisableTwoFactorForm(),
               "required": auth.two_factor_required_for_employees(db.session)}
    if not account.totp_enabled:
        uri = auth.start_two_factor(db.session, principal)
        context.update(secret=account.totp_secret, qr=_qr_data_uri(uri))
    return render("account/two_factor.html", status=status, **context)


@bp.get("/two-factor")
@require(policy.may_use_two_factor)
def two_factor():
    return _two_factor_page()


def _with_error(form_class, error, key: str):
    form = form_class()
    apply_domain_error(form, error)
    return _two_factor_page(**{key: form})


@bp.post("/two-factor/enable")
@require(policy.may_use_two_factor)
@error_page(lambda error: _with_error(EnableTwoFactorForm, error, "enable_form"), toast=False)
def enable_two_factor():
    principal = current_principal()
    form = EnableTwoFactorForm()
    if not form.validate_on_submit():
        return _two_factor_page(enable_form=form, status=422)
    codes = auth.confirm_two_factor(db.session, principal, form.code.data)
    login_user(SignedInUser(auth.principal_for(db.session, principal.account_id).at(principal.ip_address)))
    return render("account/recovery_codes.html", codes=codes)


@bp.post("/two-factor/disable")
@require(policy.may_use_two_factor)
@error_page(lambda error: _with_error(DisableTwoFactorForm, error, "disable_form"), toast=False)
def disable_two_factor():
    principal = current_principal()
    form = DisableTwoFactorForm()
    if not form.validate_on_submit():
        return _two_factor_page(disable_form=form, status=422)
    auth.disable_two_factor(db.session, principal, form.password.data)
    login_user(SignedInUser(auth.principal_for(db.session, principal.account_id).at(principal.ip_address)))
    return after_change("Two-factor sign-in is off.", url_for("account.two_factor"))
