"""My account: change my password; two-factor sign-in for staff."""

from __future__ import annotations

import base64
import dataclasses
import time
from datetime import UTC, datetime

import segno
from flask import Blueprint, flash, redirect, request, session, url_for
from flask_login import login_user

from portal.extensions import db
from portal.models import Account
from portal.services import auth, policy
from portal.services.errors import DomainError
from portal.web.forms import ChangePasswordForm, DisableTwoFactorForm, EnableTwoFactorForm, apply_domain_error
from portal.web.rendering import render
from portal.web.security import SignedInUser, client_ip, current_principal, require, signed_in

bp = Blueprint("account", __name__, url_prefix="/account")


def _now() -> datetime:
    return datetime.now(UTC)


@bp.route("/password", methods=["GET", "POST"])
@require(signed_in)
def change_password():
    principal = current_principal()
    form = ChangePasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            account = auth.change_password(db.session, principal, form.current_password.data,
                                           form.new_password.data, ip=client_ip(), now=_now())
        except DomainError as error:
            db.session.rollback()
            apply_domain_error(form, error)
            status = 422
        else:
            version = account.session_version
            db.session.commit()
            # Other sessions are out (the version moved on); this one stays, on the new version.
            login_user(SignedInUser(dataclasses.replace(principal, session_version=version)))
            session["last_seen"] = time.time()
            flash("Your password is changed. Other devices have been signed out.", "success")
            return redirect(url_for("account.change_password"), code=303)
    elif request.method == "POST":
        status = 422
    return render("account/password.html", form=form, status=status)


def _qr_data_uri(uri: str) -> str:
    svg = segno.make(uri, error="m").svg_inline(scale=5, dark="#111", light="#fff")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _two_factor_page(principal, enable_form=None, disable_form=None, status: int = 200):
    """The two-factor page: enrolment (QR code and key) when off, the switch-off form when on."""
    account = db.session.get(Account, principal.account_id)
    context = {"enabled": account.totp_enabled, "enable_form": enable_form or EnableTwoFactorForm(),
               "disable_form": disable_form or DisableTwoFactorForm(),
               "required": auth.two_factor_required_for_employees(db.session)}
    if not account.totp_enabled:
        uri = auth.start_two_factor(db.session, principal)
        db.session.commit()
        context.update(secret=account.totp_secret, qr=_qr_data_uri(uri))
    return render("account/two_factor.html", status=status, **context)


@bp.get("/two-factor")
@require(policy.may_use_two_factor)
def two_factor():
    return _two_factor_page(current_principal())


@bp.post("/two-factor/enable")
@require(policy.may_use_two_factor)
def enable_two_factor():
    principal = current_principal()
    form = EnableTwoFactorForm()
    if form.validate_on_submit():
        try:
            codes = auth.confirm_two_factor(db.session, principal, form.code.data, ip=client_ip(), now=_now())
        except DomainError as error:
            db.session.rollback()
            apply_domain_error(form, error)
        else:
            db.session.commit()
            login_user(SignedInUser(auth.principal_for(db.session, principal.account_id)))
            return render("account/recovery_codes.html", codes=codes)
    return _two_factor_page(principal, enable_form=form, status=422)


@bp.post("/two-factor/disable")
@require(policy.may_use_two_factor)
def disable_two_factor():
    principal = current_principal()
    form = DisableTwoFactorForm()
    if form.validate_on_submit():
        try:
            auth.disable_two_factor(db.session, principal, form.password.data, ip=client_ip())
        except DomainError as error:
            db.session.rollback()
            apply_domain_error(form, error)
        else:
            db.session.commit()
            login_user(SignedInUser(auth.principal_for(db.session, principal.account_id)))
            flash("Two-factor sign-in is off.", "success")
            return redirect(url_for("account.two_factor"), code=303)
    return _two_factor_page(principal, disable_form=form, status=422)
