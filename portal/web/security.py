"""Who is signed in, and the protections every request gets.

- Flask-Login over `accounts`: the session holds "account_id.session_version", so a password
  change or reset signs out every other session.
- Idle timeout per audience (staff 8 h, contacts 2 h by default), checked on the server.
- A contact's transactions run under row-level security (see services/tenancy.py).
- Staff must enrol in two-factor sign-in when an admin requires it.
- Security headers on every response: a CSP without inline script or style, no framing,
  nosniff, a strict referrer policy, HSTS over HTTPS, no caching of signed-in pages.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Flask, abort, flash, g, has_request_context, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import UserMixin, current_user, logout_user
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession

from portal.extensions import db, login_manager
from portal.services import policy
from portal.services.auth import signed_in_state, two_factor_required_for_employees
from portal.services.tenancy import apply_contact_scope, clear_contact_scope
from portal.web.unit_of_work import discard

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'")

# Endpoints a signed-in employee may use before enrolling in a required second factor.
TWO_FACTOR_ENROLMENT_ENDPOINTS = {"account.two_factor", "account.enable_two_factor", "auth.logout", "static"}
# Endpoints a contact of a suspended customer may still POST to.
READ_ONLY_ALLOWED_POSTS = {"auth.logout"}


class SignedInUser(UserMixin):
    def __init__(self, principal: policy.Principal) -> None:
        self.principal = principal

    def get_id(self) -> str:
        return f"{self.principal.account_id}.{self.principal.session_version}"


class PortalSessionInterface(SecureCookieSessionInterface):
    """Signed-cookie sessions whose cookie is Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def current_principal() -> policy.Principal | None:
    if current_user and current_user.is_authenticated:
        return current_user.principal
    return None


def client_ip() -> str | None:
    return request.remote_addr


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (no open redirects)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def home_for(principal: policy.Principal) -> str:
    return url_for("staff.home") if principal.is_employee else url_for("portal.home")


def require(check: Callable[[policy.Principal], bool]):
    """Signed-in people only (others go to the sign-in page); then `check` or 403."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            principal = current_principal()
            if principal is None:
                return login_manager.unauthorized()
            if not check(principal):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_check = check
        return wrapped

    return decorator


def signed_in(principal: policy.Principal) -> bool:
    return True


@event.listens_for(OrmSession, "after_begin")
def _scope_new_transactions(orm_session, transaction, connection):
    """Later transactions of a contact's request (after a commit) run scoped too."""
    if has_request_context() and g.get("tenant") is not None and transaction.parent is None:
        apply_contact_scope(connection, *g.tenant)


def init_security(app: Flask) -> None:
    app.session_interface = PortalSessionInterface()
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str) -> SignedInUser | None:
        try:
            account_id, version = (int(part) for part in user_id.split("."))
        except ValueError:
            return None
        token = session.get("login_session")
        if not token:
            return None
        principal, g.two_factor_required = signed_in_state(db.session, account_id, login_session_token=token)
        if principal is None or principal.session_version != version:
            return None
        # Where the request came from travels with the principal into the audit log.
        return SignedInUser(principal.at(client_ip()))

    @app.before_request
    def refuse_unreadable_input():
        # PostgreSQL text cannot hold NUL, and no person types one; a byte that is not UTF-8 is no
        # text at all (Werkzeug would raise deep inside a view). Refuse both before any query.
        try:
            for values in (request.args, request.form):
                if any("\x00" in value for value in values.values()):
                    raise UnicodeDecodeError("utf-8", b"\x00", 0, 1, "NUL")
        except UnicodeDecodeError:
            abort(400, description="The request contained a character that is not allowed. "
                                   "Go back and check what you typed.")

    @app.before_request
    def enforce_session_rules():
        g.tenant = None
        if request.endpoint == "static":
            return None
        principal = current_principal()
        if principal is None:
            if session.get("_user_id"):
                session.clear()  # the account was deactivated or its password changed elsewhere
            return None
        now = time.time()
        idle_minutes = app.config["SESSION_IDLE_MINUTES_STAFF" if principal.is_employee
                                  else "SESSION_IDLE_MINUTES_CONTACT"]
        last_seen = session.get("last_seen", now)
        if now - last_seen > idle_minutes * 60:
            logout_user()
            session.clear()
            flash("You were signed out after a period of inactivity. Sign in again.", "info")
            return redirect(url_for("auth.login", next=request.full_path if request.method == "GET" else None))
        session["last_seen"] = now
        session.permanent = True

        if principal.is_contact:
            if request.blueprint != "auth":  # sign-out reads no customer data
                g.tenant = (principal.customer_id, principal.contact_id)
                apply_contact_scope(db.session, *g.tenant)
            if principal.read_only and request.method not in ("GET", "HEAD", "OPTIONS") \
                    and request.endpoint not in READ_ONLY_ALLOWED_POSTS:
                abort(403, description="Your company's account is suspended, so the portal is read-only. "
                                       "Contact your account manager to restore it.")
        elif (not principal.two_factor_enabled and request.endpoint not in TWO_FACTOR_ENROLMENT_ENDPOINTS
              and (g.two_factor_required if "two_factor_required" in g  # read with the sign-in, one statement
                   else two_factor_required_for_employees(db.session))):
            flash("Your administrator requires two-factor sign-in. Set it up to continue.", "info")
            return redirect(url_for("account.two_factor"))
        return None

    @app.teardown_request
    def leave_contact_scope(exc):
        if g.get("tenant") is not None:
            g.tenant = None
            try:
                if db.session().in_transaction():
                    clear_contact_scope(db.session)
            except Exception:  # the transaction failed; rolling it back ends the scope anyway
                discard()

    @app.after_request
    def security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        if request.is_secure:
            headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        if request.endpoint != "static" and current_principal() is not None:
            headers["Cache-Control"] = "no-store"
        return response

    @app.context_processor
    def principal_context():
        principal = current_principal()
        nav = {}
        if principal is not None and principal.is_employee:
            nav = {"queue": policy.may_view_queue(principal), "approvals": policy.may_approve_time(principal),
                   "people": policy.may_manage_people(principal),
                   "security": policy.may_administer(principal), "system": policy.may_administer(principal),
                   "integrations": policy.may_administer(principal),
                   "employees": policy.may_view_employees(principal),
                   "audit": policy.may_read_audit_log(principal),
                   "invoices": policy.may_bill(principal),
                   "customers": policy.may_manage_customers(principal),
                   "contracts": policy.may_manage_contracts(principal),
                   "unmatched_mail": policy.may_handle_unmatched_mail(principal),
                   "holidays": policy.may_keep_holidays(principal),
                   "reports": policy.may_read_any_report(principal)}
        elif principal is not None:
            # The portal's menu: (endpoint, label), only what this contact's flags open.
            nav = {"portal": [(endpoint, label) for endpoint, label, shown in (
                ("portal.home", "Home", True),
                ("portal.tickets", "Tickets", True),
                ("portal.usage", "Contract usage", policy.may_see_contract_usage(principal)),
                ("portal.invoices", "Invoices", policy.may_see_invoices(principal)),
                ("portal.projects", "Projects", policy.may_see_projects(principal)),
            ) if shown], "profile": True}
        return {"principal": principal, "nav": nav}
