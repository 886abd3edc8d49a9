"""Fixed-scope projects and their phases."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.models.base import Base, PhaseStatus, ProjectStatus, created_at, updated_at

if TYPE_CHECKING:
    from portal.models.customers import Contact, Customer
    from portal.models.employees import Employee


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (
        sa.CheckConstraint("planned_end_date >= start_date", name="chk_project_dates"),
        sa.CheckConstraint(
            "actual_end_date IS NULL OR actual_end_date >= start_date", name="chk_actual_end_date"
        ),
        sa.CheckConstraint("budget_amount > 0", name="chk_budget"),
        sa.CheckConstraint("actual_cost >= 0", name="chk_actual_cost"),
        sa.CheckConstraint(
            "completion_percentage >= 0 AND completion_percentage <= 100", name="chk_completion"
        ),
        sa.Index("idx_projects_customer", "customer_id"),
        sa.Index("idx_projects_manager", "project_manager_id"),
        sa.Index("idx_projects_status", "project_status"),
        # The timesheet's work choice: open projects by number (0024).
        sa.Index("idx_projects_open_number", "project_number",
                 postgresql_where=sa.text("project_status IN ('planning', 'active', 'on_hold')")),
        sa.Index("idx_projects_dates", "start_date", "planned_end_date"),
        sa.Index("idx_projects_updated", "updated_at", "project_id"),  # the API's lists and updated_since
    )

    project_id: Mapped[int] = mapped_column(primary_key=True)
    project_number: Mapped[str] = mapped_column(sa.String(15), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.customer_id"))
    project_manager_id: Mapped[int | None] = mapped_column(sa.ForeignKey("employees.employee_id"))
    project_name: Mapped[str] = mapped_column(sa.String(255))
    scope_description: Mapped[str | None] = mapped_column(sa.Text)
    budget_amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    actual_cost: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), server_default=sa.text("0"))
    start_date: Mapped[date]
    planned_end_date: Mapped[date]
    actual_end_date: Mapped[date | None]
    project_status: Mapped[ProjectStatus] = mapped_column(server_default=ProjectStatus.PLANNING.value)
    completion_percentage: Mapped[int] = mapped_column(server_default="0")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    customer: Mapped[Customer] = relationship(back_populates="projects")
    project_manager: Mapped[Employee | None] = relationship()
    phases: Mapped[list[ProjectPhase]] = relationship(
        back_populates="project", order_by="ProjectPhase.start_date", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Project {self.project_number}>"


class ProjectPhase(Base):
    __tablename__ = "project_phases"
    __table_args__ = (
        sa.CheckConstraint("end_date >= start_date", name="chk_phase_dates"),
        sa.CheckConstraint("budget_allocation >= 0", name="chk_phase_budget"),
        sa.Index("idx_phases_project", "project_id"),  # a project's phases (migration 0021)
        # Phases waiting for the customer's decision (projects.awaiting_decision_clause; the homes): the
        # few not yet decided, without reading every phase (migration 0023). The predicate holds only
        # the clause's IS tests, which a prepared statement's generic plan proves too.
        sa.Index("idx_phases_awaiting", "approval_requested_at",
                 postgresql_where=sa.text("requires_approval IS TRUE AND approval_requested_at IS NOT NULL"
                                          " AND approved_at IS NULL AND rejected_at IS NULL")),
    )

    phase_id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(sa.ForeignKey("projects.project_id", ondelete="CASCADE"))
    phase_name: Mapped[str] = mapped_column(sa.String(255))
    deliverables: Mapped[str | None] = mapped_column(sa.Text)
    budget_allocation: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2))
    start_date: Mapped[date]
    end_date: Mapped[date]
    phase_status: Mapped[PhaseStatus] = mapped_column(server_default=PhaseStatus.PLANNING.value)
    requires_approval: Mapped[bool] = mapped_column(server_default=sa.false())
    approved_at: Mapped[datetime | None]
    approved_by_contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.contact_id"))
    # The project manager asks the customer's sponsors; a sponsor approves, or rejects saying why.
    approval_requested_at: Mapped[datetime | None]
    rejected_at: Mapped[datetime | None]
    rejection_reason: Mapped[str | None] = mapped_column(sa.Text)
    rejected_by_contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.contact_id"))

    project: Mapped[Project] = relationship(back_populates="phases")
    approved_by_contact: Mapped[Contact | None] = relationship(foreign_keys=[approved_by_contact_id])
    rejected_by_contact: Mapped[Contact | None] = relationship(foreign_keys=[rejected_by_contact_id])
