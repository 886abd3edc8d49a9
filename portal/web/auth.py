"""Sign in (with an optional second factor), sign out, forgotten passwords and invitations."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import login_user, logout_user

from portal.extensions import db, mailer
from portal.services import auth
from portal.services.errors import DomainError, NotFound
from portal.web.forms import (
    ForgotPasswordForm,
    NewPasswordForm,
    SecondFactorForm,
    SignInForm,
    apply_domain_error,
)
from portal.web.rendering import render
from portal.web.security import SignedInUser, client_ip, current_principal, home_for, safe_next

bp = Blueprint("auth", __name__)

PENDING_SECOND_FACTOR_SECONDS = 300


def _now() -> datetime:
    return datetime.now(UTC)


def _finish_sign_in(account, next_url: str | None):
    principal = auth.principal_for(db.session, account.account_id)
    token = auth.start_login_session(db.session, account, ip=client_ip(), user_agent=request.user_agent.string)
    db.session.commit()
    # A fresh session at sign-in: nothing from before (including the CSRF token) carries over.
    session.clear()
    session["login_session"] = token
    login_user(SignedInUser(principal))
    session["last_seen"] = time.time()
    session.permanent = True
    return redirect(safe_next(next_url) or home_for(principal))


@bp.route("/login", methods=["GET", "POST"])
def login():
    principal = current_principal()
    if principal is not None:
        return redirect(home_for(principal))
    form = SignInForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    status = 200
    if form.validate_on_submit():
        try:
            result = auth.authenticate(db.session, form.email.data, form.password.data, ip=client_ip(), now=_now())
        except DomainError as error:
            db.session.commit()  # the failed attempt, lock or throttle is recorded
            form.form_errors.append(error.message)
            status = error.status
        else:
            if result.needs_second_factor:
                db.session.commit()
                session["pending_second_factor"] = {"account_id": result.account.account_id, "at": time.time(),
                                                    "next": safe_next(form.next.data)}
                return redirect(url_for("auth.verify_second_factor"))
            return _finish_sign_in(result.account, form.next.data)
    elif request.method == "POST":
        status = 422
    return render("auth/login.html", form=form, status=status)


@bp.route("/login/verify", methods=["GET", "POST"])
def verify_second_factor():
    pending = session.get("pending_second_factor")
    if not pending or time.time() - pending["at"] > PENDING_SECOND_FACTOR_SECONDS:
        session.pop("pending_second_factor", None)
        flash("Sign in again to continue.", "info")
        return redirect(url_for("auth.login"))
    form = SecondFactorForm()
    status = 200
    if form.validate_on_submit():
        try:
            account = auth.verify_second_factor(db.session, pending["account_id"], form.code.data,
                                                ip=client_ip(), now=_now())
        except DomainError as error:
            db.session.commit()
            apply_domain_error(form, error)
            status = 422
        else:
            return _finish_sign_in(account, pending.get("next"))
    elif request.method == "POST":
        status = 422
    return render("auth/verify.html", form=form, status=status)


@bp.post("/logout")
def logout():
    principal = current_principal()
    if principal is not None:
        auth.record_sign_out(db.session, principal, client_ip())
    auth.end_login_session(db.session, session.get("login_session"), now=_now())
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.", "success")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        found = auth.request_password_reset(db.session, form.email.data, secret_key=current_app.secret_key,
                                            ip=client_ip(), now=_now())
        db.session.commit()
        if found is not None:
            account, token = found
            link = url_for("auth.reset_password", token=token, _external=True)
            mailer.send(account.email, "Reset your TechServ Portal password",
                        f"Hello {account.display_name},\n\nSomeone (we hope you) asked to reset the password of "
                        f"your TechServ Portal login. Open this link within 24 hours to choose a new one:\n\n"
                        f"{link}\n\nThe link works once. If you did not ask for this, ignore this email; "
                        "your password stays as it is.\n")
        flash("If that address belongs to a login, we have sent it a link to reset the password. "
              "It works once, for 24 hours.", "success")
        return redirect(url_for("auth.login"), code=303)
    return render("auth/forgot.html", form=form, status=422 if request.method == "POST" else 200)


def _set_password_page(purpose: str, token: str, template_title: str, done_message: str):
    try:
        _, account = auth.token_account(db.session, token, purpose, secret_key=current_app.secret_key, now=_now())
    except NotFound as error:
        return render("auth/link_invalid.html", message=error.message, status=404)
    form = NewPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            auth.set_password_with_token(db.session, token, purpose, form.password.data,
                                         secret_key=current_app.secret_key, ip=client_ip(), now=_now())
        except DomainError as error:
            db.session.rollback()
            apply_domain_error(form, error)
            status = 422
        else:
            db.session.commit()
            logout_user()
            session.clear()
            flash(done_message, "success")
            return redirect(url_for("auth.login"), code=303)
    elif request.method == "POST":
        status = 422
    return render("auth/set_password.html", form=form, title=template_title, email=account.email, status=status)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    return _set_password_page("password_reset", token, "Choose a new password",
                              "Your password is changed. Sign in with the new one.")


@bp.route("/invitation/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    return _set_password_page("invitation", token, "Welcome: choose your password",
                              "Your login is ready. Sign in with your email and the password you chose.")
