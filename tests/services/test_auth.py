"""Signing in: who may, locks, the address throttle, single-use links, passwords, two-factor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import sqlalchemy as sa

from portal.models import Account, AuditEvent
from portal.services import auth
from portal.services.errors import Forbidden, Invalid, NotFound
from portal.services.passwords import verify_password
from tests import factories as f
from tests.factories import PASSWORD

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEY = "test-secret-key"
IP = "203.0.113.7"


def _events(session, action):
    return session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).all()


def _principal(session, person):
    account = session.scalar(sa.select(Account).where(Account.email == person.email))
    return auth.principal_for(session, account.account_id)


class TestWhoMaySignIn:
    def test_active_employee_and_contact(self, session):
        for person in (f.make_staff(session), f.make_contact_login(session)):
            result = auth.authenticate(session, person.email, PASSWORD, ip=IP, now=NOW)
            assert not result.needs_second_factor
        assert len(_events(session, "login.succeeded")) == 2

    def test_email_matches_whatever_its_case(self, session):
        employee = f.make_staff(session)
        auth.authenticate(session, "  " + employee.email.upper() + " ", PASSWORD, ip=IP, now=NOW)

    @pytest.mark.parametrize("setup", [
        "wrong_password", "unknown_email", "inactive_employee", "terminated_employee",
        "inactive_customer", "prospect_customer", "deactivated_account", "no_password_yet",
    ])
    def test_everyone_else_gets_the_same_generic_answer(self, session, setup):
        email, password = None, PASSWORD
        if setup == "wrong_password":
            email, password = f.make_staff(session).email, "not the password"
        elif setup == "unknown_email":
            email = "nobody@example.com"
        elif setup in ("inactive_employee", "terminated_employee"):
            email = f.make_staff(session, employment_status=setup.split("_")[0]).email
        elif setup in ("inactive_customer", "prospect_customer"):
            customer = f.make_customer(session, account_status=setup.split("_")[0])
            email = f.make_contact_login(session, customer=customer).email
        elif setup == "deactivated_account":
            employee = f.make_employee(session)
            f.make_account(session, employee, is_active=False)
            email = employee.email
        else:
            employee = f.make_employee(session)
            f.make_account(session, employee, password_hash=None)
            email = employee.email
        with pytest.raises(auth.SignInRefused) as caught:
            auth.authenticate(session, email, password, ip=IP, now=NOW)
        assert caught.value.message == "The email or password is wrong."
        failure = _events(session, "login.failed")[-1]
        assert str(failure.ip_address) == IP

    def test_contact_of_suspended_customer_signs_in_read_only(self, session):
        customer = f.make_customer(session, account_status="suspended")
        contact = f.make_contact_login(session, customer=customer)
        auth.authenticate(session, contact.email, PASSWORD, ip=IP, now=NOW)
        principal = _principal(session, contact)
        assert principal.read_only and principal.customer_id == customer.customer_id


class TestBruteForce:
    def test_ten_failures_lock_the_account_for_fifteen_minutes(self, session):
        employee = f.make_staff(session)
        for _ in range(9):
            with pytest.raises(auth.SignInRefused):
                auth.authenticate(session, employee.email, "wrong", ip=IP, now=NOW)
        with pytest.raises(auth.SignInRefused):
            auth.authenticate(session, employee.email, "wrong", ip=IP, now=NOW)
        locked = _events(session, "login.locked")
        assert len(locked) == 1 and str(locked[0].ip_address) == IP
        with pytest.raises(auth.TooManyAttempts, match="Try again in 15 minutes"):
            auth.authenticate(session, employee.email, PASSWORD, ip=IP, now=NOW + timedelta(seconds=5))
        auth.authenticate(session, employee.email, PASSWORD, ip=IP, now=NOW + timedelta(minutes=16))

    def test_unknown_email_answers_exactly_like_an_existing_account(self, session):
        """No answer tells whether an email exists: same messages, at the same moments."""
        employee = f.make_staff(session)

        def answers(email, password):
            seen = []
            for at in [NOW] * 10 + [NOW + timedelta(minutes=10), NOW + timedelta(minutes=16)]:
                try:
                    auth.authenticate(session, email, password, ip=None, now=at)
                    seen.append("signed in")
                except (auth.SignInRefused, auth.TooManyAttempts) as error:
                    seen.append(error.message)
            return seen

        existing = answers(employee.email, "wrong")
        unknown = answers("ghost@example.com", "wrong")
        assert existing == unknown
        assert existing[9] == "The email or password is wrong."
        assert existing[10] == "Too many failed sign-ins. Try again in 6 minutes, or reset your password."
        assert existing[11] == "The email or password is wrong."

    @staticmethod
    def _answers(session, email, moments, password="wrong"):
        seen = []
        for at in moments:
            try:
                auth.authenticate(session, email, password, ip=None, now=at)
                seen.append("signed in")
            except (auth.SignInRefused, auth.TooManyAttempts) as error:
                seen.append(error.message)
        return seen

    def test_old_failures_age_out_for_known_and_unknown_emails_alike(self, session):
        """Nine failures an hour ago and three now lock nobody: a known account's count decays too."""
        employee = f.make_staff(session)
        moments = [NOW] * 9 + [NOW + timedelta(hours=1)] * 3
        existing = self._answers(session, employee.email, moments)
        unknown = self._answers(session, "ghost@example.com", moments)
        assert existing == unknown == ["The email or password is wrong."] * 12
        assert session.get(Account, _principal(session, employee).account_id).failed_login_count == 3

    def test_a_lock_lasts_fifteen_minutes_from_the_tenth_failure_for_any_email(self, session):
        """Ten failures spread over 13.5 minutes: locked until 15 minutes after the tenth, known or not."""
        employee = f.make_staff(session)
        moments = ([NOW + timedelta(seconds=90 * n) for n in range(10)]
                   + [NOW + timedelta(minutes=m) for m in (14, 16, 20, 28)] + [NOW + timedelta(minutes=29)] * 2)
        existing = self._answers(session, employee.email, moments)
        unknown = self._answers(session, "ghost@example.com", moments)
        assert existing == unknown
        wrong, locked = "The email or password is wrong.", "Too many failed sign-ins. Try again in {} minutes, " \
            "or reset your password."
        assert existing == [wrong] * 10 + [locked.format(n) for n in (15, 13, 9, 1)] + [wrong] * 2

    def test_a_success_or_a_new_password_starts_the_count_afresh(self, session):
        employee = f.make_staff(session)
        minute = timedelta(minutes=1)
        self._answers(session, employee.email, [NOW] * 9)
        assert self._answers(session, employee.email, [NOW + minute], PASSWORD) == ["signed in"]
        assert self._answers(session, employee.email, [NOW + 2 * minute] * 10)[-1] \
            == "The email or password is wrong."  # the tenth since the success: it locks now
        assert self._answers(session, employee.email, [NOW + 3 * minute], PASSWORD)[0].startswith("Too many")
        _, token = _reset_link(session, employee, now=NOW + 4 * minute)
        auth.set_password_with_token(session, token, "password_reset", "a brand new passphrase", secret_key=KEY,
                                     ip=IP, now=NOW + 5 * minute)
        assert self._answers(session, employee.email, [NOW + 6 * minute], "a brand new passphrase") == ["signed in"]

    def test_one_address_is_throttled_across_accounts(self, session):
        employee = f.make_staff(session)
        for n in range(auth.MAX_FAILURES_PER_ADDRESS):
            with pytest.raises(auth.SignInRefused):
                auth.authenticate(session, f"guess{n}@example.com", "wrong", ip=IP, now=NOW)
        with pytest.raises(auth.TooManyAttempts, match="from your network"):
            auth.authenticate(session, employee.email, PASSWORD, ip=IP, now=NOW)
        throttled = _events(session, "login.throttled")
        assert len(throttled) == 1 and str(throttled[0].ip_address) == IP
        # Another address is not affected, and the window passes.
        auth.authenticate(session, employee.email, PASSWORD, ip="198.51.100.1", now=NOW)
        auth.authenticate(session, employee.email, PASSWORD, ip=IP, now=NOW + timedelta(minutes=16))


def _reset_link(session, employee, now=NOW):
    """Ask for a reset and issue its link as the worker does when it sends the mail."""
    assert auth.request_password_reset(session, employee.email, ip=IP, now=now) is True
    account = session.scalar(sa.select(Account).where(Account.email == employee.email))
    return account, auth.issue_link_token(session, account, "password_reset", secret_key=KEY, now=now)


class TestLinks:
    def test_reset_link_sets_the_password_once(self, session):
        employee = f.make_staff(session)
        account, token = _reset_link(session, employee)
        version = account.session_version
        auth.set_password_with_token(session, token, "password_reset", "a brand new passphrase",
                                     secret_key=KEY, ip=IP, now=NOW + timedelta(hours=1))
        assert verify_password(account.password_hash, "a brand new passphrase")
        assert account.session_version == version + 1
        with pytest.raises(NotFound, match="expired or was already used"):
            auth.set_password_with_token(session, token, "password_reset", "yet another passphrase",
                                         secret_key=KEY, ip=IP, now=NOW + timedelta(hours=2))
        assert _events(session, "password.reset")

    def test_reset_link_expires_after_24_hours(self, session):
        employee = f.make_staff(session)
        _, token = _reset_link(session, employee)
        with pytest.raises(NotFound):
            auth.token_account(session, token, "password_reset", secret_key=KEY, now=NOW + timedelta(hours=24, seconds=1))

    def test_forged_or_cross_purpose_links_are_refused(self, session):
        employee = f.make_staff(session)
        _, token = _reset_link(session, employee)
        for bad in (token + "x", token[:-3]):
            with pytest.raises(NotFound):
                auth.token_account(session, bad, "password_reset", secret_key=KEY, now=NOW)
        with pytest.raises(NotFound):
            auth.token_account(session, token, "invitation", secret_key=KEY, now=NOW)
        with pytest.raises(NotFound):
            auth.token_account(session, token, "password_reset", secret_key="another key", now=NOW)

    def test_a_new_link_retires_the_old_one(self, session):
        employee = f.make_staff(session)
        _, first = _reset_link(session, employee)
        _reset_link(session, employee)
        with pytest.raises(NotFound):
            auth.token_account(session, first, "password_reset", secret_key=KEY, now=NOW)

    def test_changing_the_password_retires_an_outstanding_reset_link(self, session):
        employee = f.make_staff(session)
        _, token = _reset_link(session, employee)
        auth.change_password(session, _principal(session, employee), PASSWORD, "a brand new passphrase",
                             now=NOW + timedelta(minutes=5))
        with pytest.raises(NotFound, match="expired or was already used"):
            auth.set_password_with_token(session, token, "password_reset", "the attacker's passphrase",
                                         secret_key=KEY, ip=IP, now=NOW + timedelta(minutes=10))

    def test_redeeming_one_link_retires_every_other_link_of_the_account(self, session):
        employee = f.make_staff(session)
        account = session.scalar(sa.select(Account).where(Account.email == employee.email))
        invitation = auth.issue_link_token(session, account, "invitation", secret_key=KEY, now=NOW)
        _, reset = _reset_link(session, employee)
        auth.set_password_with_token(session, reset, "password_reset", "a brand new passphrase", secret_key=KEY,
                                     ip=IP, now=NOW + timedelta(minutes=1))
        with pytest.raises(NotFound):
            auth.token_account(session, invitation, "invitation", secret_key=KEY, now=NOW + timedelta(minutes=2))
        other = f.make_staff(session)
        other_account = session.scalar(sa.select(Account).where(Account.email == other.email))
        _, reset = _reset_link(session, other)
        invitation = auth.issue_link_token(session, other_account, "invitation", secret_key=KEY, now=NOW)
        auth.set_password_with_token(session, invitation, "invitation", "a brand new passphrase", secret_key=KEY,
                                     ip=IP, now=NOW + timedelta(minutes=1))
        with pytest.raises(NotFound):
            auth.token_account(session, reset, "password_reset", secret_key=KEY, now=NOW + timedelta(minutes=2))

    def test_weak_password_keeps_the_link_usable(self, session):
        employee = f.make_staff(session)
        _, token = _reset_link(session, employee)
        with pytest.raises(Invalid, match="common"):
            auth.set_password_with_token(session, token, "password_reset", "password1", secret_key=KEY, ip=IP, now=NOW)
        auth.token_account(session, token, "password_reset", secret_key=KEY, now=NOW)

    def test_five_reset_links_per_email_an_hour_known_or_not(self, session):
        employee = f.make_staff(session)
        for n in range(auth.MAX_RESETS_PER_EMAIL):
            assert auth.request_password_reset(session, employee.email, ip=f"198.51.100.{n}",
                                               now=NOW + timedelta(minutes=n)) is True
            assert auth.request_password_reset(session, "ghost@example.com", ip=f"198.51.100.{n}",
                                               now=NOW + timedelta(minutes=n)) is False
        # The sixth within the hour: nothing is issued, whatever the case of the address or the client's address.
        assert auth.request_password_reset(session, " " + employee.email.upper(), ip="192.0.2.9",
                                           now=NOW + timedelta(minutes=59)) is False
        throttled = _events(session, "password.reset_throttled")
        assert len(throttled) == 1 and throttled[0].changes["throttle"]["new"] == "email"
        assert auth.request_password_reset(session, "ghost@example.com", ip="192.0.2.9",
                                           now=NOW + timedelta(minutes=59)) is False
        assert len(_events(session, "password.reset_throttled")) == 2
        # An hour after the first, one more may go; refused requests do not extend the wait.
        assert auth.request_password_reset(session, employee.email, ip="192.0.2.9",
                                           now=NOW + timedelta(minutes=60, seconds=1)) is True

    def test_twenty_reset_requests_per_address_an_hour(self, session):
        employee = f.make_staff(session)
        for n in range(auth.MAX_RESETS_PER_ADDRESS):
            auth.request_password_reset(session, f"guess{n}@example.com", ip=IP, now=NOW)
        assert auth.request_password_reset(session, employee.email, ip=IP, now=NOW) is False
        assert _events(session, "password.reset_throttled")[-1].changes["throttle"]["new"] == "address"
        assert auth.request_password_reset(session, employee.email, ip="198.51.100.1",
                                           now=NOW) is True

    def test_unknown_email_gets_no_link_and_no_error(self, session):
        assert auth.request_password_reset(session, "nobody@example.com", ip=IP) is False
        assert not session.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs"))  # no mail queued

    def test_admin_invites_an_employee_who_then_signs_in(self, session):
        admin = _principal(session, f.make_staff(session, role="admin"))
        newcomer = f.make_employee(session)
        account = auth.invite(session, admin, employee_id=newcomer.employee_id)
        token = auth.issue_link_token(session, account, "invitation", secret_key=KEY, now=NOW)  # as the worker does
        assert account.password_hash is None and account.email == newcomer.email
        auth.set_password_with_token(session, token, "invitation", "river stone lantern", secret_key=KEY,
                                     ip=IP, now=NOW)
        auth.authenticate(session, newcomer.email, "river stone lantern", ip=IP, now=NOW)
        assert _events(session, "invitation.sent") and _events(session, "invitation.accepted")

    @pytest.mark.parametrize("role, kind, allowed", [
        ("admin", "employee", True), ("account_manager", "employee", False), ("technician", "employee", False),
        ("admin", "contact", True), ("account_manager", "contact", True), ("senior_technician", "contact", False),
        ("project_manager", "contact", False),
    ])
    def test_who_may_invite(self, session, role, kind, allowed):
        inviter = _principal(session, f.make_staff(session, role=role))
        target = {"employee_id": f.make_employee(session).employee_id} if kind == "employee" \
            else {"contact_id": f.make_contact(session).contact_id}
        if allowed:
            auth.invite(session, inviter, **target)
        else:
            with pytest.raises(Forbidden):
                auth.invite(session, inviter, **target)

    def test_someone_with_a_password_is_not_invited_again(self, session):
        admin = _principal(session, f.make_staff(session, role="admin"))
        with pytest.raises(Invalid, match="already has a login"):
            auth.invite(session, admin, employee_id=f.make_staff(session).employee_id)


class TestPasswordChange:
    def test_change_needs_the_current_password_and_a_strong_new_one(self, session):
        employee = f.make_staff(session)
        principal = _principal(session, employee).at(IP)
        with pytest.raises(Invalid) as caught:
            auth.change_password(session, principal, "wrong", "a brand new passphrase", now=NOW)
        assert caught.value.field == "current_password"
        with pytest.raises(Invalid) as caught:
            auth.change_password(session, principal, PASSWORD, "qwertyuiop", now=NOW)
        assert caught.value.field == "new_password" and "common" in caught.value.message
        account = auth.change_password(session, principal, PASSWORD, "a brand new passphrase", now=NOW)
        assert account.session_version == principal.session_version + 1
        assert str(_events(session, "password.changed")[0].ip_address) == IP


class TestTwoFactor:
    def _enrol(self, session, employee):
        principal = _principal(session, employee)
        auth.start_two_factor(session, principal)
        account = session.get(Account, principal.account_id)
        code = pyotp.TOTP(account.totp_secret).at(NOW)
        return account, auth.confirm_two_factor(session, principal, code, now=NOW)

    def test_enrolment_gives_ten_recovery_codes_kept_only_as_hashes(self, session):
        account, codes = self._enrol(session, f.make_staff(session))
        assert len(codes) == 10 and len(set(codes)) == 10
        assert not set(codes) & set(account.recovery_code_hashes)

    def test_wrong_code_does_not_enrol(self, session):
        principal = _principal(session, f.make_staff(session))
        auth.start_two_factor(session, principal)
        with pytest.raises(Invalid) as caught:
            auth.confirm_two_factor(session, principal, "000000", now=NOW)
        assert caught.value.field == "code"

    def test_sign_in_then_needs_a_code_or_a_recovery_code_once(self, session):
        employee = f.make_staff(session)
        account, codes = self._enrol(session, employee)
        later = NOW + timedelta(seconds=30)
        result = auth.authenticate(session, employee.email, PASSWORD, ip=IP, now=later)
        assert result.needs_second_factor
        auth.verify_second_factor(session, account.account_id, pyotp.TOTP(account.totp_secret).at(later), ip=IP,
                                  now=later)
        auth.verify_second_factor(session, account.account_id, codes[0], ip=IP, now=NOW)
        with pytest.raises(auth.SignInRefused):
            auth.verify_second_factor(session, account.account_id, codes[0], ip=IP, now=NOW)
        assert len(account.recovery_code_hashes) == 9

    def test_a_code_is_good_once(self, session):
        employee = f.make_staff(session)
        account, _ = self._enrol(session, employee)
        later = NOW + timedelta(seconds=60)
        code = pyotp.TOTP(account.totp_secret).at(later)
        auth.verify_second_factor(session, account.account_id, code, ip=IP, now=later)
        with pytest.raises(auth.SignInRefused):
            auth.verify_second_factor(session, account.account_id, code, ip=IP, now=later + timedelta(seconds=5))

    def test_wrong_codes_count_towards_the_lock_across_sign_ins(self, session):
        """A right password does not reset the count of wrong codes (no lock bypass)."""
        employee = f.make_staff(session)
        account, _ = self._enrol(session, employee)
        for attempt in range(auth.MAX_FAILED_LOGINS):
            auth.authenticate(session, employee.email, PASSWORD, ip=f"198.51.100.{attempt}", now=NOW)
            with pytest.raises(auth.SignInRefused):
                auth.verify_second_factor(session, account.account_id, "000000", ip=f"198.51.100.{attempt}",
                                          now=NOW)
        assert account.locked_until is not None
        with pytest.raises(auth.TooManyAttempts):
            auth.authenticate(session, employee.email, PASSWORD, ip="192.0.2.1", now=NOW + timedelta(minutes=1))

    def test_contacts_do_not_enrol(self, session):
        with pytest.raises(Forbidden):
            auth.start_two_factor(session, _principal(session, f.make_contact_login(session)))

    def test_required_two_factor_cannot_be_turned_off(self, session):
        admin = _principal(session, f.make_staff(session, role="admin"))
        employee = f.make_staff(session)
        self._enrol(session, employee)
        auth.set_two_factor_requirement(session, admin, True)
        with pytest.raises(Invalid, match="requires two-factor"):
            auth.disable_two_factor(session, _principal(session, employee), PASSWORD)
        auth.set_two_factor_requirement(session, admin, False)
        auth.disable_two_factor(session, _principal(session, employee), PASSWORD)

    def test_only_admins_change_the_requirement(self, session):
        with pytest.raises(Forbidden):
            auth.set_two_factor_requirement(session, _principal(session, f.make_staff(session, role="account_manager")),
                                            True)
