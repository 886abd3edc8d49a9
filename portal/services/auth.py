"""Signing in and everything around it: locks, the per-address throttle, single-use links,
password changes and two-factor codes. Every outcome is written to the audit log."""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

import pyotp
import sqlalchemy as sa
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.models import (
    Account,
    AuthToken,
    Contact,
    Customer,
    Employee,
    LoginAttempt,
    LoginSession,
    PasswordResetRequest,
    PortalSetting,
)
from portal.models.base import ActorType
from portal.services import audit, clock, events, policy
from portal.services.actors import Actor
from portal.services.errors import DomainError, Forbidden, Invalid, NotFound
from portal.services.passwords import (
    check_password_rules,
    hash_password,
    verify_password,
)
from portal.services.secrets_at_rest import SecretUnreadable

log = logging.getLogger(__name__)

MAX_FAILED_LOGINS = 10
FAILURE_WINDOW = timedelta(minutes=15)  # failures older than this no longer count towards a lock
LOCK_DURATION = timedelta(minutes=15)
ADDRESS_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ADDRESS = 30
TOKEN_LIFETIME = timedelta(hours=24)
RESET_WINDOW = timedelta(hours=1)
MAX_RESETS_PER_EMAIL = 5  # reset links asked for one email within RESET_WINDOW
MAX_RESETS_PER_ADDRESS = 20  # reset links asked for from one client address within RESET_WINDOW
RECOVERY_CODE_COUNT = 10
TOTP_ISSUER = "TechServ Portal"
REQUIRE_EMPLOYEE_2FA = "require_two_factor_for_employees"

GENERIC_FAILURE = "The email or password is wrong."


class SignInRefused(DomainError):
    """Wrong email or password, or a person who may not sign in: the same words for all."""

    status = 401
    title = "Sign-in refused"


class TooManyAttempts(DomainError):
    status = 429
    title = "Too many attempts"


class SecondFactorUnavailable(DomainError):
    """The account's two-factor seed does not decrypt with the keys of ENCRYPTION_KEYS: no code can be
    checked until an administrator puts the key back (a recovery code still works: those are hashes)."""

    status = 503
    title = "Two-factor sign-in unavailable"


SECOND_FACTOR_UNAVAILABLE = (
    "Two-factor codes cannot be checked right now: the portal cannot decrypt your two-factor secret with "
    "the keys in its ENCRYPTION_KEYS setting. Tell your administrator, who must put back the key it was "
    "saved with. A recovery code still works."
)


@dataclass(frozen=True)
class SignIn:
    account: Account
    needs_second_factor: bool


def principal_for(session, account_id: int, *, login_session_token: str | None = None) -> policy.Principal | None:
    """The Principal of an account that may still sign in, or None (deactivated, left, suspended...).

    With `login_session_token`, also None unless that signed-in browser is still valid (not signed out).
    """
    return signed_in_state(session, account_id, login_session_token=login_session_token)[0]


def _signed_in_query(with_token: bool):
    """The sign-in statement of every request, built once: only the columns a principal and
    policy.may_sign_in read (not four whole rows and their ORM objects)."""
    required = (sa.select(PortalSetting.value).where(PortalSetting.key == REQUIRE_EMPLOYEE_2FA)
                .scalar_subquery())
    query = (sa.select(
        Account.account_id, Account.email, Account.is_active, Account.password_hash.is_not(None).label("has_password"),
        Account.employee_id, Account.totp_enabled_at.is_not(None).label("totp_enabled"), Account.session_version,
        Employee.employee_id.label("employee_found"), Employee.first_name.label("employee_first_name"),
        Employee.last_name.label("employee_last_name"), Employee.role, Employee.employment_status,
        Contact.contact_id, Contact.first_name.label("contact_first_name"),
        Contact.last_name.label("contact_last_name"), Contact.is_primary_contact, Contact.is_billing_contact,
        Contact.can_create_tickets, Contact.can_approve_projects,
        Customer.customer_id, Customer.company_name, Customer.account_status, Customer.timezone,
        required.label("two_factor_setting"))
             .outerjoin(Employee, Employee.employee_id == Account.employee_id)
             .outerjoin(Contact, Contact.contact_id == Account.contact_id)
             .outerjoin(Customer, Customer.customer_id == Contact.customer_id)
             .where(Account.account_id == sa.bindparam("account_id")))
    if with_token:
        query = query.join(LoginSession, sa.and_(
            LoginSession.account_id == Account.account_id, LoginSession.token_hash == sa.bindparam("token_hash"),
            LoginSession.revoked_at.is_(None)))
    return query


_SIGNED_IN = _signed_in_query(with_token=False)
_SIGNED_IN_WITH_TOKEN = _signed_in_query(with_token=True)


def signed_in_state(session, account_id: int, *, login_session_token: str | None = None
                    ) -> tuple[policy.Principal | None, bool]:
    """(principal_for's answer, whether employees must use two-factor sign-in), in ONE statement.

    Every signed-in request asks this first: the account, its login session, its owner (employee,
    or contact and customer) and the two-factor setting come in one round trip (issue 14: the
    per-request sign-in statements cut to the fewest). It runs before a contact's scope is set.
    """
    query = _SIGNED_IN_WITH_TOKEN if login_session_token is not None else _SIGNED_IN
    params = {"account_id": account_id}
    if login_session_token is not None:
        params["token_hash"] = _hash_token(login_session_token)
    # Core, on the session's connection: the statement is built once, and no ORM entity is loaded.
    row = session.connection().execute(query, params).one_or_none()
    if row is None:
        return None, False
    two_factor_required = bool(row.two_factor_setting)
    account = SimpleNamespace(is_active=row.is_active, password_hash=row.has_password)
    if row.employee_id is not None:
        if row.employee_found is None or not policy.may_sign_in(
                account, employee=SimpleNamespace(employment_status=row.employment_status)):
            return None, two_factor_required
        return policy.Principal(
            account_id=row.account_id, email=row.email, name=f"{row.employee_first_name} {row.employee_last_name}",
            employee_id=row.employee_id, role=row.role, two_factor_enabled=row.totp_enabled,
            session_version=row.session_version,
        ), two_factor_required
    if row.contact_id is None or row.customer_id is None or not policy.may_sign_in(
            account, contact=SimpleNamespace(), customer=SimpleNamespace(account_status=row.account_status)):
        return None, two_factor_required
    return policy.Principal(
        account_id=row.account_id, email=row.email, name=f"{row.contact_first_name} {row.contact_last_name}",
        contact_id=row.contact_id, customer_id=row.customer_id, customer_name=row.company_name,
        customer_status=row.account_status, is_primary_contact=row.is_primary_contact,
        is_billing_contact=row.is_billing_contact, can_create_tickets=row.can_create_tickets,
        can_approve_projects=row.can_approve_projects, two_factor_enabled=row.totp_enabled,
        session_version=row.session_version, time_zone=row.timezone,
    ), two_factor_required


def _account_by_email(session, email: str, lock: bool = False) -> Account | None:
    query = sa.select(Account).where(sa.func.lower(Account.email) == email.strip().lower())
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def _actor_for(account: Account | None, email: str, ip: str | None) -> Actor:
    if account is None:
        return Actor(ActorType.SYSTEM, None, f"unknown sign-in: {email[:200]}", ip)
    if account.employee_id:
        return Actor(ActorType.EMPLOYEE, account.employee_id, account.email, ip)
    return Actor(ActorType.CONTACT, account.contact_id, account.email, ip)


def _minutes_left(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds() // 60) + 1)


def _address_throttled(session, ip: str | None, email: str, now: datetime) -> None:
    """:raises TooManyAttempts: this address failed too often in the last 15 minutes."""
    if ip is None:
        return
    failures = session.scalar(sa.select(sa.func.count()).where(
        LoginAttempt.ip_address == ip, LoginAttempt.succeeded.is_(False),
        LoginAttempt.attempted_at > now - ADDRESS_WINDOW))
    if failures >= MAX_FAILURES_PER_ADDRESS:
        if failures == MAX_FAILURES_PER_ADDRESS:
            audit.record(session, Actor(ActorType.SYSTEM, None, "sign-in throttle", ip), "login.throttled",
                         changes={"failures": (None, failures), "email": (None, email[:200])})
        session.add(LoginAttempt(email="", ip_address=ip, succeeded=False, attempted_at=now))
        raise TooManyAttempts("Too many failed sign-ins from your network. Wait 15 minutes and try again.")


def _locked_message(until: datetime, now: datetime) -> str:
    return (f"Too many failed sign-ins. Try again in {_minutes_left(until, now)} minutes, "
            "or reset your password.")


# One rule for every email, known or not, read from the attempts themselves: an email is locked
# for LOCK_DURATION from the failure that made MAX_FAILED_LOGINS failures within FAILURE_WINDOW
# (attempts during a lock are not counted for the email, so the lock does not slide), and older
# failures age out. A successful sign-in, or a password set since, starts the count afresh. So
# neither the answers nor their moments tell a known email from an unknown one.
_LOCK_STATE = sa.text("""
    WITH failures AS (
        SELECT attempted_at,
               count(*) OVER (ORDER BY attempted_at RANGE BETWEEN CAST(:window AS interval) PRECEDING
                              AND CURRENT ROW) AS in_window
        FROM login_attempts
        WHERE lower(email) = :email AND NOT succeeded
          AND attempted_at > CAST(:horizon AS timestamptz) AND attempted_at <= CAST(:now AS timestamptz)
          AND attempted_at > COALESCE(GREATEST(
              CAST(:since AS timestamptz),
              (SELECT max(s.attempted_at) FROM login_attempts s
               WHERE lower(s.email) = :email AND s.succeeded
                 AND s.attempted_at > CAST(:horizon AS timestamptz) AND s.attempted_at <= CAST(:now AS timestamptz))),
              '-infinity')
    )
    SELECT (SELECT max(attempted_at) FROM failures WHERE in_window >= :limit),
           (SELECT count(*) FROM failures WHERE attempted_at > CAST(:now AS timestamptz) - CAST(:window AS interval))
""")


def _lock_state(session, email: str, now: datetime, since: datetime | None = None) -> tuple[datetime | None, int]:
    """(when the email's lock ends, if it is locked now; its failures inside the window).

    `since`: the account's last password change (failures before it no longer count); None for an unknown email.
    """
    locked_at, recent = session.execute(_LOCK_STATE, {
        "email": email.strip().lower(), "now": now, "window": FAILURE_WINDOW, "limit": MAX_FAILED_LOGINS,
        "horizon": now - FAILURE_WINDOW - LOCK_DURATION, "since": since,
    }).one()
    if locked_at is not None and locked_at + LOCK_DURATION > now:
        return locked_at + LOCK_DURATION, recent
    return None, recent


def authenticate(session, email: str, password: str, *, ip: str | None, now: datetime) -> SignIn:
    """Check a password sign-in. The caller commits whatever the outcome (failures are recorded).

    Every path hashes the password once and asks the same lock rule, so neither the time taken nor
    the answer tells anything about the email.
    :raises TooManyAttempts: this address failed too often lately, or the email is locked.
    :raises SignInRefused: wrong email or password, or a person who may not sign in (one message for all).
    """
    email = (email or "").strip()[:255]
    _address_throttled(session, ip, email, now)
    account = _account_by_email(session, email, lock=True)
    actor = _actor_for(account, email, ip)
    password_ok = verify_password(account.password_hash if account else None, password)

    locked_until, _ = _lock_state(session, email, now, account.password_changed_at if account else None)
    if locked_until:
        # Counted for the address throttle, not for the email, so the lock does not slide.
        session.add(LoginAttempt(email="", ip_address=ip, succeeded=False, attempted_at=now))
        raise TooManyAttempts(_locked_message(locked_until, now))
    if account is None:
        session.add(LoginAttempt(email=email, ip_address=ip, succeeded=False, attempted_at=now))
        audit.record(session, actor, "login.failed", changes={"email": (None, email[:200])})
        raise SignInRefused(GENERIC_FAILURE)

    if not (password_ok and principal_for(session, account.account_id) is not None):
        _record_failure(session, account, actor, email, ip, now,
                        reason="wrong password" if not password_ok else "may not sign in")
        raise SignInRefused(GENERIC_FAILURE)
    if account.totp_enabled:
        # The failure count is reset only once the second factor is right, too.
        audit.record(session, actor, "login.password_ok", table="accounts", row_id=account.account_id)
        return SignIn(account, needs_second_factor=True)
    complete_sign_in(session, account, ip=ip, now=now)
    return SignIn(account, needs_second_factor=False)


@dataclass(frozen=True)
class SignInOutcome:
    """The result of one sign-in attempt: the account that passed, or why it was refused.

    A refusal is a result, not an error: the attempt, the failure count and any lock it caused
    are recorded and must commit with the request.
    """

    sign_in: SignIn | None = None
    account: Account | None = None
    refused: DomainError | None = None


def attempt_sign_in(session, email: str, password: str, *, ip: str | None, now: datetime | None = None) -> SignInOutcome:
    """`authenticate`, with a refusal returned instead of raised (see SignInOutcome)."""
    try:
        result = authenticate(session, email, password, ip=ip, now=now or clock.now())
    except (SignInRefused, TooManyAttempts) as refused:
        return SignInOutcome(refused=refused)
    return SignInOutcome(sign_in=result, account=result.account)


def attempt_second_factor(session, account_id: int, code: str, *, ip: str | None,
                          now: datetime | None = None) -> SignInOutcome:
    """`verify_second_factor`, with a refusal returned instead of raised (see SignInOutcome)."""
    try:
        account = verify_second_factor(session, account_id, code, ip=ip, now=now or clock.now())
    except (SignInRefused, TooManyAttempts, SecondFactorUnavailable) as refused:
        return SignInOutcome(refused=refused)
    return SignInOutcome(account=account)


def _record_failure(session, account: Account, actor: Actor, email: str, ip, now, reason: str) -> None:
    """Record a failed sign-in of a known account; the account's columns mirror the lock rule for staff to read."""
    session.add(LoginAttempt(email=email[:255], ip_address=ip, succeeded=False, attempted_at=now))
    session.flush()
    locked_until, recent = _lock_state(session, email, now, account.password_changed_at)
    account.failed_login_count = recent
    audit.record(session, actor, "login.failed", table="accounts", row_id=account.account_id,
                 changes={"reason": (None, reason), "failed_login_count": (None, recent)})
    if locked_until:
        account.locked_until = locked_until
        account.failed_login_count = 0
        audit.record(session, actor, "login.locked", table="accounts", row_id=account.account_id,
                     changes={"locked_until": (None, account.locked_until)})


def complete_sign_in(session, account: Account, *, ip: str | None, now: datetime) -> None:
    """Record a successful sign-in (after the second factor, when there is one)."""
    account.last_login_at = now
    account.failed_login_count = 0
    account.locked_until = None
    if account.contact is not None:
        account.contact.last_login = now
    session.add(LoginAttempt(email=account.email, ip_address=ip, succeeded=True, attempted_at=now))
    audit.record(session, _actor_for(account, account.email, ip), "login.succeeded", table="accounts",
                 row_id=account.account_id)


def record_sign_out(session, principal: policy.Principal) -> None:
    audit.record(session, principal.actor, "logout", table="accounts", row_id=principal.account_id)


# --- two-factor ------------------------------------------------------------------------------

def _code_hash(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").replace(" ", "").lower().encode()).hexdigest()


def _totp_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step a code belongs to (now, or one step either side), or None if it is wrong."""
    code = code.replace(" ", "")
    if not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current, current - 1, current + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_second_factor(session, account_id: int, code: str, *, ip: str | None, now: datetime) -> Account:
    """Check a TOTP code (each good once) or an unused recovery code, then complete the sign-in.

    :raises TooManyAttempts: the address is throttled or the account locked.
    :raises SignInRefused: the code is wrong (it counts as a failed sign-in).
    :raises SecondFactorUnavailable: the seed does not decrypt with ENCRYPTION_KEYS and the code is no
        recovery code (it counts as a failed sign-in too: recovery codes must not be guessed meanwhile).
    """
    account = session.scalar(sa.select(Account).where(Account.account_id == account_id).with_for_update())
    if account is None or not account.totp_enabled or principal_for(session, account_id) is None:
        raise SignInRefused("Sign in again.")
    _address_throttled(session, ip, account.email, now)
    actor = _actor_for(account, account.email, ip)
    locked_until, _ = _lock_state(session, account.email, now, account.password_changed_at)
    if locked_until:
        raise TooManyAttempts(_locked_message(locked_until, now))
    code = (code or "").strip()[:40]
    try:
        step = _totp_step(account.totp_secret, code, now)
        seed_unreadable = False
    except SecretUnreadable as unreadable:
        log.error("Two-factor sign-in of account %s: %s", account.account_id, unreadable)
        step, seed_unreadable = None, True
    if step is not None and (account.totp_last_step is None or step > account.totp_last_step):
        account.totp_last_step = step
        complete_sign_in(session, account, ip=ip, now=now)
        return account
    hashes = list(account.recovery_code_hashes or [])
    if step is None and code and _code_hash(code) in hashes:
        hashes.remove(_code_hash(code))
        account.recovery_code_hashes = hashes
        audit.record(session, actor, "two_factor.recovery_code_used", table="accounts", row_id=account.account_id,
                     changes={"recovery_codes_left": (None, len(hashes))})
        complete_sign_in(session, account, ip=ip, now=now)
        return account
    if seed_unreadable:
        _record_failure(session, account, actor, account.email, ip, now, reason="two-factor secret unreadable")
        raise SecondFactorUnavailable(SECOND_FACTOR_UNAVAILABLE)
    _record_failure(session, account, actor, account.email, ip, now,
                    reason="two-factor code used before" if step is not None else "wrong two-factor code")
    raise SignInRefused("That code is not right. Enter the current 6-digit code from your app, "
                        "or a recovery code.", field="code")


def start_two_factor(session, principal: policy.Principal) -> str:
    """The secret for the authenticator app (not in force until confirmed); returns its otpauth URI.

    An enrolment already started keeps its secret, so a second tab shows the same QR code.

    :raises Forbidden: contacts do not use two-factor sign-in here.
    """
    if not policy.may_use_two_factor(principal):
        raise Forbidden("Two-factor sign-in is for staff accounts.")
    account = session.get(Account, principal.account_id)
    if account.totp_enabled:
        raise Invalid("Two-factor sign-in is already on. Turn it off first to move it to another device.")
    try:
        started = account.totp_secret
    except SecretUnreadable:
        # An enrolment begun under a key that is gone: nothing is in force yet, so begin afresh.
        started = None
    if not started:
        account.totp_secret = pyotp.random_base32()
    return provisioning_uri(account)


def provisioning_uri(account: Account) -> str:
    return pyotp.TOTP(account.totp_secret).provisioning_uri(name=account.email, issuer_name=TOTP_ISSUER)


def confirm_two_factor(session, principal: policy.Principal, code: str, *,
                       now: datetime | None = None) -> list[str]:
    """Turn two-factor on once the app shows a right code; returns the recovery codes (shown once).

    :raises Invalid: no enrolment started, or the code is wrong.
    """
    account = session.get(Account, principal.account_id)
    if not account.totp_secret or account.totp_enabled:
        raise Invalid("Start again: open the two-factor page and scan the new code.", field="code")
    now = now or clock.now()
    step = _totp_step(account.totp_secret, (code or "").strip()[:40], now)
    if step is None:
        raise Invalid("That code is not right. Check the time on your phone and enter the current code.",
                      field="code")
    account.totp_last_step = step
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODE_COUNT)]
    account.totp_enabled_at = now
    account.recovery_code_hashes = [_code_hash(c) for c in codes]
    audit.record(session, principal.actor, "two_factor.enabled", table="accounts", row_id=account.account_id)
    return codes


def disable_two_factor(session, principal: policy.Principal, password: str) -> None:
    """:raises Invalid: wrong password, or two-factor is required for all employees."""
    account = session.get(Account, principal.account_id)
    if not verify_password(account.password_hash, password):
        raise Invalid("The password is wrong.", field="password")
    if principal.is_employee and two_factor_required_for_employees(session):
        raise Invalid("Your administrator requires two-factor sign-in for all staff.", field="password")
    account.totp_secret = None
    account.totp_enabled_at = None
    account.recovery_code_hashes = None
    audit.record(session, principal.actor, "two_factor.disabled", table="accounts", row_id=account.account_id)


def two_factor_required_for_employees(session) -> bool:
    setting = session.get(PortalSetting, REQUIRE_EMPLOYEE_2FA)
    return bool(setting and setting.value)


def employees_without_two_factor(session) -> int:
    """Active employees with a login who have not set up two-factor sign-in."""
    return session.scalar(sa.select(sa.func.count()).select_from(Account).join(
        Employee, Employee.employee_id == Account.employee_id).where(
        Account.totp_enabled_at.is_(None), Employee.employment_status == "active"))


def set_two_factor_requirement(session, principal: policy.Principal, required: bool) -> None:
    """:raises Forbidden: only admins change security settings."""
    if not policy.may_administer(principal):
        raise Forbidden("Only administrators change security settings.")
    setting = session.get(PortalSetting, REQUIRE_EMPLOYEE_2FA)
    old = bool(setting and setting.value)
    if setting is None:
        setting = PortalSetting(key=REQUIRE_EMPLOYEE_2FA, value=required)
        session.add(setting)
    setting.value = required
    setting.updated_by = principal.email
    audit.record(session, principal.actor, "settings.changed", table="portal_settings",
                 changes={REQUIRE_EMPLOYEE_2FA: (old, required)})


# --- passwords and single-use links ----------------------------------------------------------

def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def _serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=f"techserv-{purpose}")


def issue_link_token(session, account: Account, purpose: str, *, secret_key: str, now: datetime) -> str:
    """A signed, 24-hour, single-use token for `purpose` ('invitation' or 'password_reset').

    Older unused tokens of the same purpose stop working. Only a hash is stored.
    """
    session.execute(sa.update(AuthToken).where(
        AuthToken.account_id == account.account_id, AuthToken.purpose == purpose, AuthToken.used_at.is_(None)
    ).values(used_at=now))
    raw = secrets.token_urlsafe(32)
    session.add(AuthToken(account_id=account.account_id, purpose=purpose, token_hash=_hash_token(raw),
                          created_at=now, expires_at=now + TOKEN_LIFETIME))
    return _serializer(secret_key, purpose).dumps(raw)


LINK_GONE = "This link has expired or was already used. Ask for a new one."


def link_account(session, signed: str, purpose: str, *, secret_key: str, now: datetime) -> Account | None:
    """The account a genuine, unexpired, unused link is for, else None (forged, expired or used alike)."""
    try:
        return token_account(session, signed, purpose, secret_key=secret_key, now=now)[1]
    except NotFound:
        return None


def token_account(session, signed: str, purpose: str, *, secret_key: str, now: datetime,
                  lock: bool = False) -> tuple[AuthToken, Account]:
    """The token and its account, if the link is genuine, unexpired and unused.

    :raises NotFound: the link is forged, expired, or already used (one message for all three).
    """
    gone = NotFound(LINK_GONE)
    try:
        raw = _serializer(secret_key, purpose).loads(signed, max_age=int(TOKEN_LIFETIME.total_seconds()))
    except (SignatureExpired, BadSignature):
        raise gone from None
    query = sa.select(AuthToken).where(AuthToken.token_hash == _hash_token(raw), AuthToken.purpose == purpose)
    if lock:
        query = query.with_for_update()
    token = session.scalar(query)
    if token is None or token.used_at is not None or token.expires_at <= now:
        raise gone
    return token, token.account


def set_password_with_token(session, signed: str, purpose: str, new_password: str, *, secret_key: str,
                            ip: str | None, now: datetime) -> Account:
    """Redeem an invitation or reset link: set the password, use up the link (and every other one of the
    account), sign out other sessions.

    :raises NotFound: the link is forged, expired or used.
    :raises Invalid: the password breaks the rules (the link stays usable).
    """
    token, account = token_account(session, signed, purpose, secret_key=secret_key, now=now, lock=True)
    check_password_rules(new_password, user_inputs=[account.email, account.display_name])
    token.used_at = now
    _set_password(session, account, new_password, now)
    account.locked_until = None
    account.failed_login_count = 0
    action = "invitation.accepted" if purpose == "invitation" else "password.reset"
    audit.record(session, _actor_for(account, account.email, ip), action, table="accounts", row_id=account.account_id)
    return account


def _set_password(session, account: Account, new_password: str, now: datetime) -> None:
    """Set the password, sign out other sessions and retire every link still open for this account:
    a reset link mailed before the change must not undo it (and an invitation is answered)."""
    account.password_hash = hash_password(new_password)
    account.password_changed_at = now
    account.session_version += 1
    if account.contact_id is not None and session.scalar(sa.select(sa.func.portal_contact_id())) == account.contact_id:
        # A contact's own transaction may not touch auth_tokens: the database retires them (migration 0009).
        session.execute(sa.select(sa.func.portal_retire_own_login_links(now)))
    else:
        session.execute(sa.update(AuthToken).where(AuthToken.account_id == account.account_id,
                                                   AuthToken.used_at.is_(None)).values(used_at=now))


def change_password(session, principal: policy.Principal, current: str, new: str, *,
                    now: datetime | None = None) -> Account:
    """Change one's own password; other sessions are signed out and open reset links retired.

    :raises Invalid: the current password is wrong, or the new one breaks the rules.
    """
    if principal.account_id is None:
        raise Forbidden("Only people with a login have a password to change.")
    if not policy.may_change_anything(principal):
        raise Forbidden("Your company's account is suspended, so nothing can be changed. "
                        "Contact your account manager to restore it.")
    account = session.get(Account, principal.account_id)
    if not verify_password(account.password_hash, current):
        raise Invalid("The current password is wrong.", field="current_password")
    if current == new:
        raise Invalid("Choose a password different from the current one.", field="new_password")
    check_password_rules(new, field="new_password", user_inputs=[account.email, principal.name])
    _set_password(session, account, new, now or clock.now())
    audit.record(session, principal.actor, "password.changed", table="accounts", row_id=account.account_id)
    return account


def _reset_throttled(session, email: str, ip: str | None, now: datetime) -> str | None:
    """'email' or 'address' when that one asked for MAX_RESETS_PER_* links within RESET_WINDOW, else None.

    Requests for one email or from one address are serialised (transaction-level advisory locks,
    taken in a fixed order), so two at once cannot both slip under the limit.
    """
    keys = sorted(f"password-reset:{kind}:{value}" for kind, value in (("email", email), ("address", ip))
                  if value is not None)
    for key in keys:
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(key, 0))))
    since = now - RESET_WINDOW

    def counted(*where):
        return (sa.select(sa.func.count()).select_from(PasswordResetRequest)
                .where(PasswordResetRequest.throttled.is_(False), PasswordResetRequest.requested_at > since,
                       PasswordResetRequest.requested_at <= now, *where).scalar_subquery())

    for_email, from_address = session.execute(sa.select(
        counted(PasswordResetRequest.email == email),
        counted(PasswordResetRequest.ip_address == ip) if ip is not None else sa.literal(0))).one()
    if for_email >= MAX_RESETS_PER_EMAIL:
        return "email"
    if from_address >= MAX_RESETS_PER_ADDRESS:
        return "address"
    return None


def request_password_reset(session, email: str, *, ip: str | None, now: datetime | None = None) -> bool:
    """Have the worker mail a reset link when the email belongs to someone who may sign in and no
    throttle holds; says whether it will.

    The caller answers the same in every case, and nothing is sent from the request, so neither the
    page nor its timing tells anybody whether an email exists or a throttle held. Throttles:
    MAX_RESETS_PER_EMAIL per email and MAX_RESETS_PER_ADDRESS per client address within
    RESET_WINDOW, counted in the database whether the email exists or not; over either, nothing is
    looked up and nothing is sent.
    """
    now = now or clock.now()
    key = (email or "").strip().lower()[:255]
    throttle = _reset_throttled(session, key, ip, now)
    session.add(PasswordResetRequest(email=key, ip_address=ip, requested_at=now, throttled=throttle is not None))
    if throttle is not None:
        audit.record(session, Actor(ActorType.SYSTEM, None, "password reset", ip), "password.reset_throttled",
                     changes={"email": (None, key[:200]), "throttle": (None, throttle)})
        return False
    account = _account_by_email(session, email or "")
    if account is None or not account.password_hash or principal_for(session, account.account_id) is None:
        events.emit(session, Actor(ActorType.SYSTEM, None, "password reset", ip), "password.reset_requested",
                    changes={"email": (None, (email or "")[:200]), "sent": (None, False)})
        return False
    events.emit(session, _actor_for(account, account.email, ip), "password.reset_requested", account,
                {"account_id": account.account_id}, changes={"sent": (None, True)})
    return True


def invite(session, principal: policy.Principal, *, contact_id: int | None = None,
           employee_id: int | None = None) -> Account:
    """Create (or reuse) the person's login and have the worker mail them an invitation link; returns the account.

    The link itself is issued by the worker when it sends the mail (no secret waits in a job).

    :raises Forbidden: admins invite employees; account managers and admins invite contacts.
    :raises NotFound: no such person.
    :raises Invalid: the person already has a password (they can reset it), or may not sign in.
    """
    if employee_id is not None:
        if not policy.may_invite_employees(principal):
            raise Forbidden("Only administrators invite employees.")
        person = session.get(Employee, employee_id)
        owner = {"employee_id": employee_id}
    else:
        if not policy.may_invite_contacts(principal):
            raise Forbidden("Only account managers and administrators invite contacts.")
        person = session.get(Contact, contact_id) if contact_id is not None else None
        owner = {"contact_id": contact_id}
    if person is None:
        raise NotFound("No such person.")
    account = session.scalar(sa.select(Account).filter_by(**owner))
    if account is None:
        other = _account_by_email(session, person.email)
        if other is not None:
            raise Invalid(f"Another login already uses {person.email}. Change one of the two email addresses first.")
        account = Account(email=person.email, **owner)
        session.add(account)
        session.flush()
    if account.password_hash:
        raise Invalid(f"{person.full_name} already has a login; they can reset their password on the sign-in page.")
    if isinstance(person, Employee) and person.employment_status != "active":
        raise Invalid(f"{person.full_name} is not an active employee.")
    if isinstance(person, Contact) and person.customer.account_status not in ("active", "suspended"):
        raise Invalid(f"{person.customer.company_name} is not an active customer.")
    events.emit(session, principal, "invitation.sent", account,
                {"account_id": account.account_id, "invited_by": principal.name},
                changes={"email": (None, account.email)})
    return account


# --- signed-in browsers ----------------------------------------------------------------------

def start_login_session(session, account: Account, *, ip: str | None, user_agent: str | None) -> str:
    """Register a signed-in browser; returns the token its (signed) session cookie keeps."""
    token = secrets.token_urlsafe(32)
    session.add(LoginSession(account_id=account.account_id, token_hash=_hash_token(token), ip_address=ip,
                             user_agent=(user_agent or "")[:255] or None))
    return token


def end_login_session(session, token: str | None, *, now: datetime) -> None:
    """Revoke a signed-in browser, so a copy of its cookie no longer works."""
    if token:
        session.execute(sa.update(LoginSession).where(LoginSession.token_hash == _hash_token(token),
                                                      LoginSession.revoked_at.is_(None)).values(revoked_at=now))
