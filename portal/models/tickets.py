"""Support tickets and their conversation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sqlalchemy.dialects.postgresql import TSVECTOR

from portal.models.base import ActorType, Base, TicketCategory, TicketPriority, TicketStatus, created_at, touched_at

if TYPE_CHECKING:
    from portal.models.contracts import ServiceContract
    from portal.models.customers import Contact, Customer
    from portal.models.employees import Employee


# What a contact's search looks in: title and description, never the conversation (which holds
# internal notes). Written as PostgreSQL prints it back, so that autogenerate sees no change.
PUBLIC_DOCUMENT = "to_tsvector('english'::regconfig, (((title)::text || ' '::text) || description))"


class SupportTicket(Base):
    __tablename__ = "support_tickets"
    __table_args__ = (
        # Errata 3: each clause in parentheses (AND binds tighter than OR).
        sa.CheckConstraint(
            "(assigned_at IS NULL OR assigned_at >= created_at)"
            " AND (first_response_at IS NULL OR first_response_at >= created_at)"
            " AND (resolved_at IS NULL OR resolved_at >= created_at)"
            " AND (closed_at IS NULL OR closed_at >= created_at)",
            name="chk_ticket_timestamps",
        ),
        sa.CheckConstraint(
            "estimated_hours IS NULL OR estimated_hours > 0", name="chk_estimated_hours"
        ),
        sa.CheckConstraint("actual_hours >= 0", name="chk_actual_hours"),
        # The seed's column-level CHECK, under the name PostgreSQL gives it.
        sa.CheckConstraint(
            "customer_satisfaction >= 1 AND customer_satisfaction <= 5",
            name="support_tickets_customer_satisfaction_check",
        ),
        sa.Index("idx_tickets_customer", "customer_id"),
        sa.Index("idx_tickets_assigned", "assigned_employee_id", "status"),
        sa.Index("idx_tickets_status_priority", "status", "priority"),
        sa.Index("idx_tickets_contract", "contract_id"),
        sa.Index("idx_tickets_created", "created_at"),
        # The homes' "at risk" counts: tickets being worked whose warning time has passed (0024; 0025 the assignee).
        sa.Index("idx_tickets_at_risk", "sla_at_risk_at", postgresql_include=["assigned_employee_id"],
                 postgresql_where=sa.text("status IN ('open', 'assigned', 'in_progress')")),
        # The staff queue: open work by the next SLA deadline (paused and SLA-less last).
        sa.Index("idx_tickets_queue", "sla_due_at", "ticket_id",
                 postgresql_include=["status", "priority", "category", "customer_id", "assigned_employee_id",
                                     "sla_at_risk_at", "response_due_at"],
                 postgresql_where=sa.text("status <> 'closed'")),
        sa.Index("idx_tickets_open_priority", sa.text("priority DESC"), "sla_due_at", "ticket_id",
                 postgresql_where=sa.text("status <> 'closed'")),
        sa.Index("idx_tickets_open_created", "created_at", "ticket_id", postgresql_where=sa.text("status <> 'closed'")),
        sa.Index("idx_tickets_open_search", "search_vector", postgresql_using="gin",
                 postgresql_where=sa.text("status <> 'closed'")),
        sa.Index("idx_tickets_open_activity", "last_activity_at",
                 postgresql_where=sa.text("status <> 'closed'")),
        sa.Index("idx_tickets_search", "search_vector", postgresql_using="gin"),
        sa.Index("idx_tickets_public_search", "public_search_vector", postgresql_using="gin"),
        sa.Index("idx_tickets_customer_activity", "customer_id", sa.text("last_activity_at DESC"),
                 sa.text("ticket_id DESC"), postgresql_include=["status", "contact_id"]),
        sa.Index("idx_tickets_updated", "updated_at", "ticket_id"),  # the API's lists and updated_since
        # The SLA report and the seniors' home: tickets opened in a period with a response deadline,
        # counted from the index alone (migration 0023).
        sa.Index("idx_tickets_sla_period", "created_at",
                 postgresql_include=["customer_id", "priority", "first_response_at", "response_due_at"],
                 postgresql_where=sa.text("contract_id IS NOT NULL AND response_due_at IS NOT NULL")),
        # A company's unresolved tickets (the portal's open list, counts and home; migration 0021).
        sa.Index("idx_tickets_customer_open", "customer_id", sa.text("last_activity_at DESC"),
                 sa.text("ticket_id DESC"), postgresql_include=["status", "contact_id", "sla_due_at"],
                 postgresql_where=sa.text("status IN ('open', 'assigned', 'in_progress', 'waiting_customer')")),
    )

    ticket_id: Mapped[int] = mapped_column(primary_key=True)
    # VARCHAR(20), not the seed's 15: the millionth ticket's number needs 16 characters.
    ticket_number: Mapped[str] = mapped_column(sa.String(20), unique=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.customer_id"))
    contract_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_contracts.contract_id"))
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.contact_id"))
    assigned_employee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("employees.employee_id"))
    title: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text)
    category: Mapped[TicketCategory]
    priority: Mapped[TicketPriority] = mapped_column(server_default=TicketPriority.MEDIUM.value)
    status: Mapped[TicketStatus] = mapped_column(server_default=TicketStatus.OPEN.value)
    created_at: Mapped[datetime] = created_at()
    assigned_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    estimated_hours: Mapped[Decimal | None] = mapped_column(sa.Numeric(5, 2))
    actual_hours: Mapped[Decimal] = mapped_column(sa.Numeric(5, 2), server_default=sa.text("0"))
    resolution_notes: Mapped[str | None] = mapped_column(sa.Text)
    customer_satisfaction: Mapped[int | None]
    satisfaction_comment: Mapped[str | None] = mapped_column(sa.Text)
    # The SLA clock (services/sla.py): due times kept on the row so the queue can sort and index them.
    response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime | None]  # the next deadline that matters now; NULL when paused, met or none
    sla_at_risk_at: Mapped[datetime | None]  # from here on, under 25 % of that deadline's time is left
    last_activity_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = touched_at()
    version: Mapped[int] = mapped_column(server_default="1")
    # Optimistic locking: every UPDATE says "WHERE version = <the version read>" and bumps it,
    # so a second technician's change to a ticket that moved on fails instead of overwriting.
    __mapper_args__ = {"version_id_col": version}
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR, deferred=True)
    public_search_vector: Mapped[str | None] = mapped_column(
        TSVECTOR, sa.Computed(PUBLIC_DOCUMENT, persisted=True), deferred=True)

    customer: Mapped[Customer] = relationship(back_populates="tickets")
    contract: Mapped[ServiceContract | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    assigned_employee: Mapped[Employee | None] = relationship()
    comments: Mapped[list[TicketComment]] = relationship(
        back_populates="ticket", order_by="TicketComment.created_at", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<SupportTicket {self.ticket_number} {self.status}>"


class TicketComment(Base):
    """One message of a ticket's conversation: a public reply or an internal note (staff only)."""

    __tablename__ = "ticket_comments"
    __table_args__ = (
        sa.CheckConstraint(
            "num_nonnulls(author_contact_id, author_employee_id) = 1", name="chk_comment_author"
        ),
        sa.CheckConstraint(
            "NOT is_internal OR author_employee_id IS NOT NULL", name="chk_comment_internal_staff"
        ),
        sa.CheckConstraint("body ~ '[^[:space:]]'", name="chk_comment_body"),
        sa.Index("idx_comments_ticket", "ticket_id", "created_at"),
    )

    comment_id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        sa.ForeignKey("support_tickets.ticket_id", ondelete="CASCADE")
    )
    author_contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.contact_id"))
    author_employee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("employees.employee_id"))
    body: Mapped[str] = mapped_column(sa.Text)
    is_internal: Mapped[bool] = mapped_column(server_default=sa.false())
    created_at: Mapped[datetime] = created_at()

    ticket: Mapped[SupportTicket] = relationship(back_populates="comments")
    author_contact: Mapped[Contact | None] = relationship()
    author_employee: Mapped[Employee | None] = relationship()

    @property
    def author_name(self) -> str:
        author = self.author_employee or self.author_contact
        return author.full_name if author else "Unknown"


class TicketStatusChange(Base):
    """Every status move of a ticket: the log the SLA clock is recomputed from."""

    __tablename__ = "ticket_status_changes"
    __table_args__ = (sa.Index("idx_status_changes_ticket", "ticket_id", "changed_at"),)

    change_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("support_tickets.ticket_id", ondelete="CASCADE"))
    from_status: Mapped[TicketStatus | None]
    to_status: Mapped[TicketStatus]
    changed_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    actor_type: Mapped[ActorType]
    actor_id: Mapped[int | None]


class TicketAttachment(Base):
    """A file attached to a ticket (or to one reply of it); the bytes live outside static/."""

    __tablename__ = "ticket_attachments"
    __table_args__ = (
        sa.CheckConstraint("num_nonnulls(uploaded_by_contact_id, uploaded_by_employee_id) = 1",
                           name="chk_attachment_uploader"),
        sa.CheckConstraint("size_bytes > 0 AND size_bytes <= 10485760", name="chk_attachment_size"),
        sa.CheckConstraint("file_name = btrim(file_name) AND file_name <> ''", name="chk_attachment_file_name"),
        sa.Index("idx_attachments_ticket", "ticket_id", "created_at"),
    )

    attachment_id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(sa.ForeignKey("support_tickets.ticket_id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket_comments.comment_id", ondelete="CASCADE"))
    uploaded_by_contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.contact_id"))
    uploaded_by_employee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("employees.employee_id"))
    file_name: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    storage_name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = created_at()
