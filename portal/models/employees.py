"""Employees of the MSP: technicians, managers and admins."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, EmployeeRole, EmploymentStatus, created_at, updated_at
from portal.models.customers import EMAIL_PATTERN


class Employee(Base):
    __tablename__ = "employees"
    __table_args__ = (
        sa.CheckConstraint(
            "hourly_rate_internal > 0 AND hourly_rate_client > 0", name="chk_rates"
        ),
        sa.CheckConstraint(
            "capacity_hours_weekly > 0 AND capacity_hours_weekly <= 60", name="chk_capacity"
        ),
        sa.CheckConstraint(
            "termination_date IS NULL OR termination_date >= hire_date", name="chk_termination_date"
        ),
        # The seed's email rule for customers and contacts (migration 0014).
        sa.CheckConstraint(f"email ~* '{EMAIL_PATTERN}'", name="chk_email_format"),
        # Logins match emails case-insensitively, so no two employees differ only in case.
        sa.Index("idx_employees_email_lower", sa.text("lower(email)"), unique=True),
    )

    employee_id: Mapped[int] = mapped_column(primary_key=True)
    employee_number: Mapped[str] = mapped_column(sa.String(10), unique=True)
    first_name: Mapped[str] = mapped_column(sa.String(100))
    last_name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    department: Mapped[str | None] = mapped_column(sa.String(100))
    employment_status: Mapped[EmploymentStatus] = mapped_column(
        server_default=EmploymentStatus.ACTIVE.value
    )
    hire_date: Mapped[date]
    termination_date: Mapped[date | None]
    role: Mapped[EmployeeRole]
    skills_certifications: Mapped[str | None] = mapped_column(sa.Text)
    hourly_rate_internal: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    hourly_rate_client: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    capacity_hours_weekly: Mapped[Decimal] = mapped_column(sa.Numeric(4, 1), server_default="40.0")
    is_on_call: Mapped[bool] = mapped_column(server_default=sa.false())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def __repr__(self) -> str:
        return f"<Employee {self.employee_number} {self.role}>"
