"""Time worked on a ticket or a project, and its approval."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import ApprovalStatus, Base, WorkCategory, created_at, touched_at

if TYPE_CHECKING:
    from portal.models.customers import Customer
    from portal.models.employees import Employee
    from portal.models.projects import Project
    from portal.models.tickets import SupportTicket


class TimeEntry(Base):
    __tablename__ = "time_entries"
    __table_args__ = (
        sa.CheckConstraint(
            "(ticket_id IS NOT NULL AND project_id IS NULL)"
            " OR (ticket_id IS NULL AND project_id IS NOT NULL)",
            name="chk_work_assignment",
        ),
        sa.CheckConstraint("hours_worked > 0 AND hours_worked <= 24", name="chk_hours_worked"),
        sa.CheckConstraint("billing_rate >= 0", name="chk_billing_rate"),
        sa.CheckConstraint(
            "end_time IS NULL OR start_time IS NULL OR end_time > start_time", name="chk_time_range"
        ),
        sa.CheckConstraint(
            "approval_status <> 'rejected' OR rejection_reason ~ '[^[:space:]]'", name="chk_rejection_reason"
        ),
        sa.Index("idx_time_employee_date", "employee_id", "work_date"),
        sa.Index("idx_time_customer", "customer_id"),
        sa.Index("idx_time_customer_date", "customer_id", "work_date"),  # a customer's month (usage; 0026)
        sa.Index("idx_time_updated", "updated_at", "entry_id"),  # the API's lists and updated_since
        sa.Index("idx_time_ticket", "ticket_id", postgresql_where=sa.text("ticket_id IS NOT NULL")),
        sa.Index(
            "idx_time_project", "project_id", postgresql_where=sa.text("project_id IS NOT NULL")
        ),
        sa.Index("idx_time_approval", "approval_status"),
        # Time waiting for approval, per author, by index alone: a person's own pending hours on the homes,
        # the timesheet's and approvals' pending entries (migration 0019; the team's and approvals' totals
        # are kept in pending_time_totals, 0025).
        sa.Index("idx_time_pending", "employee_id", "work_date", postgresql_include=["hours_worked", "ticket_id"],
                 postgresql_where=sa.text("approval_status = 'pending'")),
        # Approvals, oldest first, a page from the index; the totals of a filtered list from it alone (0023).
        sa.Index("idx_time_pending_oldest", "work_date", "employee_id", "entry_id",
                 postgresql_include=["hours_worked", "billing_rate", "ticket_id", "project_id", "customer_id"],
                 postgresql_where=sa.text("approval_status = 'pending'")),
        sa.Index(
            "idx_time_billable",
            "is_billable",
            "approval_status",
            postgresql_where=sa.text("is_billable = TRUE"),
        ),
    )

    entry_id: Mapped[int] = mapped_column(primary_key=True)
    employee_id: Mapped[int] = mapped_column(sa.ForeignKey("employees.employee_id"))
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.customer_id"))
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("support_tickets.ticket_id"))
    project_id: Mapped[int | None] = mapped_column(sa.ForeignKey("projects.project_id"))
    work_date: Mapped[date]
    start_time: Mapped[time | None]
    end_time: Mapped[time | None]
    hours_worked: Mapped[Decimal] = mapped_column(sa.Numeric(4, 2))
    description: Mapped[str] = mapped_column(sa.Text)
    work_category: Mapped[WorkCategory]
    is_billable: Mapped[bool] = mapped_column(server_default=sa.true())
    approval_status: Mapped[ApprovalStatus] = mapped_column(server_default=ApprovalStatus.PENDING.value)
    approved_by_employee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("employees.employee_id"))
    approved_at: Mapped[datetime | None]
    billing_rate: Mapped[Decimal] = mapped_column(sa.Numeric(10, 2))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = touched_at()
    # A rejection says why and who; the author corrects the entry and sends it again (pending).
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text)
    rejected_at: Mapped[datetime | None]
    rejected_by_employee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("employees.employee_id"))

    employee: Mapped[Employee] = relationship(foreign_keys=[employee_id])
    rejected_by: Mapped[Employee | None] = relationship(foreign_keys=[rejected_by_employee_id])
    approved_by: Mapped[Employee | None] = relationship(foreign_keys=[approved_by_employee_id])
    customer: Mapped[Customer] = relationship()
    ticket: Mapped[SupportTicket | None] = relationship()
    project: Mapped[Project | None] = relationship()


SUPPORT_WORK = 0  # PendingTimeTotal.project_id of support time (entries on tickets)
# What pending_time_totals holds, summed from the entries (the data set's load and its check).
PENDING_TIME_TOTALS = (
    "SELECT employee_id, coalesce(project_id, 0) AS project_id, count(*) AS entries, sum(hours_worked) AS hours,"
    " sum(hours_worked * billing_rate) AS value FROM time_entries WHERE approval_status = 'pending' GROUP BY 1, 2")


class PendingTimeTotal(Base):
    """Time waiting for approval per author and project (SUPPORT_WORK: on tickets): the count, hours and
    value (hours x billing rate) of the pending entries, kept by statement triggers on time_entries
    (migration 0025), so approvals and the homes never sum thousands of entries. No foreign keys:
    derived data; a group left without entries is deleted by the same trigger."""

    __tablename__ = "pending_time_totals"

    employee_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    project_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    entries: Mapped[int]
    hours: Mapped[Decimal] = mapped_column(sa.Numeric(14, 2))
    value: Mapped[Decimal] = mapped_column(sa.Numeric(18, 4))
