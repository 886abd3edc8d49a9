"""Logins: one account per contact or employee."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, created_at, updated_at

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
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    contact: Mapped[Contact | None] = relationship()
    employee: Mapped[Employee | None] = relationship()
