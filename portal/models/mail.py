"""Mail in and out (migration 0020): the MSP's holiday calendar, the Message-IDs we sent, the mails we read."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, created_at


class Holiday(Base):
    """A day the MSP's business-hours contracts do not cover (services/sla.py)."""

    __tablename__ = "holidays"
    __table_args__ = (sa.CheckConstraint("btrim(name) <> ''", name="chk_holiday_name"),)

    holiday_id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = created_at()


class OutboundMessage(Base):
    """A mail we sent about a ticket: a reply quoting its Message-ID threads back to the ticket."""

    __tablename__ = "outbound_messages"
    __table_args__ = (sa.Index("idx_outbound_messages_ticket", "ticket_id"),)

    message_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("support_tickets.ticket_id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(sa.String(255))
    sent_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


INBOUND_OUTCOMES = ("ticketed", "replied", "unmatched", "ignored", "attached", "discarded")


class InboundMail(Base):
    """One message read from the support mailbox (once: its Message-ID is unique) and what became of it."""

    __tablename__ = "inbound_mails"
    __table_args__ = (
        sa.CheckConstraint("outcome IN ('ticketed', 'replied', 'unmatched', 'ignored', 'attached', 'discarded')",
                           name="chk_inbound_outcome"),
        sa.Index("idx_inbound_mails_outcome", "outcome", "received_at", "inbound_mail_id"),
        sa.Index("idx_inbound_mails_sender", sa.text("lower(from_address)"), "received_at"),
    )

    inbound_mail_id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(sa.String(998), unique=True)
    from_address: Mapped[str] = mapped_column(sa.String(255))
    from_name: Mapped[str | None] = mapped_column(sa.String(255))
    subject: Mapped[str] = mapped_column(sa.Text)
    body: Mapped[str] = mapped_column(sa.Text)
    raw: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # kept while unmatched: its files, if attached later
    outcome: Mapped[str] = mapped_column(sa.String(20))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    ticket_id: Mapped[int | None] = mapped_column(sa.ForeignKey("support_tickets.ticket_id", ondelete="SET NULL"))
    comment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("ticket_comments.comment_id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(sa.ForeignKey("customers.customer_id", ondelete="SET NULL"))
    decided_by_employee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("employees.employee_id"))
    decided_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
