"""Logins: one account per contact or employee."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, created_at, updated_at
from portal.services.secrets_at_rest import EncryptedText

if TYPE_CHECKING:
    from portal.models.customers import Contact
    from portal.models.employees import Employee


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        sa.CheckConstraint("num_nonnulls(contact_id, employee_id) = 1", name="chk_account_owner"),
        sa.CheckConstraint("failed_login_count >= 0", name="chk_failed_login_count"),
        sa.CheckConstraint("email = btrim(email) AND email <> ''", name="chk_account_email"),
        # Emails match case-insensitively: one account per address whatever its case.
        sa.Index("idx_accounts_email_lower", sa.text("lower(email)"), unique=True),
    )

    account_id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    contact_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.contact_id", ondelete="CASCADE"), unique=True
    )
    employee_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("employees.employee_id", ondelete="CASCADE"), unique=True
    )
    is_active: Mapped[bool] = mapped_column(server_default=sa.true())
    last_login_at: Mapped[datetime | None]
    failed_login_count: Mapped[int] = mapped_column(server_default="0")
    locked_until: Mapped[datetime | None]
    password_changed_at: Mapped[datetime | None]
    # Part of every session: bumping it (password change or reset) signs out all other sessions.
    session_version: Mapped[int] = mapped_column(server_default="1")
    # The authenticator's seed, which the app reads back to check codes: encrypted at rest (migration 0016),
    # loaded only where it is read.
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText(), deferred=True)
    totp_enabled_at: Mapped[datetime | None]
    # sha256 of each unused recovery code; a used code is removed.
    recovery_code_hashes: Mapped[list[str] | None] = mapped_column(JSONB)
    # The last accepted TOTP time step: a code is good once (no replay within its 30-90 s window).
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    contact: Mapped[Contact | None] = relationship()
    employee: Mapped[Employee | None] = relationship()

    @property
    def is_employee(self) -> bool:
        return self.employee_id is not None

    @property
    def is_contact(self) -> bool:
        return self.contact_id is not None

    @property
    def display_name(self) -> str:
        person = self.employee or self.contact
        return person.full_name if person else self.email

    @property
    def totp_enabled(self) -> bool:
        return self.totp_enabled_at is not None


class AuthToken(Base):
    """A single-use link (invitation or password reset); only the token's hash is stored."""

    __tablename__ = "auth_tokens"
    __table_args__ = (
        sa.CheckConstraint("purpose IN ('invitation', 'password_reset')", name="chk_token_purpose"),
        sa.CheckConstraint("expires_at > created_at", name="chk_token_expiry"),
        sa.Index("idx_auth_tokens_account", "account_id", "purpose"),
    )

    token_id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.account_id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(sa.String(20))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship()


class LoginSession(Base):
    """A signed-in browser. Signing out revokes it, so a copied cookie stops working."""

    __tablename__ = "login_sessions"
    __table_args__ = (sa.Index("idx_login_sessions_account", "account_id"),)

    login_session_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.account_id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = created_at()
    revoked_at: Mapped[datetime | None]
    ip_address: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))


class LoginAttempt(Base):
    """Every sign-in attempt: the per-address throttle and the per-email lock (known or unknown emails alike)
    are read from these rows; `accounts.failed_login_count` and `locked_until` only mirror the lock."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        sa.Index("idx_login_attempts_ip", "ip_address", "attempted_at"),
        sa.Index("idx_login_attempts_time", "attempted_at"),
    )

    attempt_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255))
    ip_address: Mapped[str | None] = mapped_column(INET)
    succeeded: Mapped[bool]
    attempted_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class PortalSetting(Base):
    """Settings an admin changes in the app (not in the environment), such as requiring 2FA."""

    __tablename__ = "portal_settings"

    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    value: Mapped[dict | list | bool | int | str] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = updated_at()
    updated_by: Mapped[str | None] = mapped_column(sa.String(255))


class PasswordResetRequest(Base):
    """Every "forgot password" request, for its throttles per email and per address (counted here, so
    every app instance counts the same)."""

    __tablename__ = "password_reset_requests"
    __table_args__ = (
        sa.Index("idx_reset_requests_email", "email", "requested_at"),
        sa.Index("idx_reset_requests_ip", "ip_address", "requested_at"),
    )

    request_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255))  # as asked for, trimmed and lower-cased
    ip_address: Mapped[str | None] = mapped_column(INET)
    requested_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    throttled: Mapped[bool]  # refused by a throttle: nothing was looked up or sent
