"""Sign in (with an optional second factor), sign out, forgotten passwords and invitations."""

from __future__ import annotations

import time

from flask import Blueprint, current_app, flash, redirect, request, session, url_for
from flask_login import login_user, logout_user

from portal.extensions import db
from portal.services import auth, clock
from portal.web.errors import error_page
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


def _finish_sign_in(account, next_url: str | None):
    principal = auth.principal_for(db.session, account.account_id)
    token = auth.start_login_session(db.session, account, ip=client_ip(), user_agent=request.user_agent.string)
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
        # A refusal is recorded (attempt, failure count, lock) and commits with the request.
        outcome = auth.attempt_sign_in(db.session, form.email.data, form.password.data, ip=client_ip())
        if outcome.refused is not None:
            form.form_errors.append(outcome.refused.message)
            status = outcome.refused.status
        elif outcome.sign_in.needs_second_factor:
            session["pending_second_factor"] = {"account_id": outcome.account.account_id, "at": time.time(),
                                                "next": safe_next(form.next.data)}
            return redirect(url_for("auth.verify_second_factor"))
        else:
            return _finish_sign_in(outcome.account, form.next.data)
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
        outcome = auth.attempt_second_factor(db.session, pending["account_id"], form.code.data, ip=client_ip())
        if outcome.refused is None:
            return _finish_sign_in(outcome.account, pending.get("next"))
        apply_domain_error(form, outcome.refused)
        # The server cannot check codes (ENCRYPTION_KEYS lacks a key): unavailable, not the person's mistake.
        status = 503 if isinstance(outcome.refused, auth.SecondFactorUnavailable) else 422
    elif request.method == "POST":
        status = 422
    return render("auth/verify.html", form=form, status=status)


@bp.post("/logout")
def logout():
    principal = current_principal()
    if principal is not None:
        auth.record_sign_out(db.session, principal)
    auth.end_login_session(db.session, session.get("login_session"), now=clock.now())
    logout_user()
    session.clear()
    flash("You are signed out.", "success")
    return redirect(url_for("auth.login"), code=303)


def _signed_in_page():
    """The pages for signed-out people, asked for by someone signed in: a GET changes nothing."""
    return render("auth/signed_in.html", principal=current_principal())


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    if current_principal() is not None:
        return _signed_in_page()
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        auth.request_password_reset(db.session, form.email.data, ip=client_ip())
        flash("If that address belongs to a login, we have sent it a link to reset the password. "
              "It works once, for 24 hours.", "success")
        return redirect(url_for("auth.login"), code=303)
    return render("auth/forgot.html", form=form, status=422 if request.method == "POST" else 200)


def _set_password_page(purpose: str, token: str, title: str, done_message: str, error=None):
    if current_principal() is not None:
        return _signed_in_page()
    account = auth.link_account(db.session, token, purpose, secret_key=current_app.secret_key, now=clock.now())
    if account is None:
        return render("auth/link_invalid.html", message=auth.LINK_GONE, status=404)
    form = NewPasswordForm()
    if error is not None:
        apply_domain_error(form, error)
    elif form.validate_on_submit():
        auth.set_password_with_token(db.session, token, purpose, form.password.data,
                                     secret_key=current_app.secret_key, ip=client_ip(), now=clock.now())
        logout_user()
        session.clear()
        flash(done_message, "success")
        return redirect(url_for("auth.login"), code=303)
    return render("auth/set_password.html", form=form, title=title, email=account.email,
                  status=422 if request.method == "POST" else 200)


RESET_TITLE = "Choose a new password"
WELCOME_TITLE = "Welcome: choose your password"


RESET_DONE = "Your password is changed. Sign in with the new one."
WELCOME_DONE = "Your login is ready. Sign in with your email and the password you chose."


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@error_page(lambda error, token: _set_password_page("password_reset", token, RESET_TITLE, RESET_DONE, error),
            toast=False)
def reset_password(token: str):
    return _set_password_page("password_reset", token, RESET_TITLE, RESET_DONE)


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@error_page(lambda error, token: _set_password_page("invitation", token, WELCOME_TITLE, WELCOME_DONE, error),
            toast=False)
def accept_invitation(token: str):
    return _set_password_page("invitation", token, WELCOME_TITLE, WELCOME_DONE)
