"""Tickets by email both ways, and SLA clocks that count business hours.

- service_contracts.coverage_days / coverage_start / coverage_end: the hours a contract covers,
  in its customer's time zone. No days: around the clock (24x7, what every contract was before).
  Days are ISO weekdays (1 Monday .. 7 Sunday), the window one stretch of a day (start < end).
- customers.timezone (the seed's column) must name a zone PostgreSQL knows (IANA names).
- holidays: the MSP's calendar, one row a day; no covered time on those days.
- sla_covered_end / sla_covered_seconds: the SQL twins of services/sla.py's add_covered and
  covered_between, which the contact guard (support_ticket_contact_guard, first of migration
  0009) now uses to check the deadlines a contact's reply writes.
- outbound_messages: the Message-IDs of the mails we sent about a ticket, so a reply's
  In-Reply-To / References finds its ticket, and our own mails coming back are recognised.
- inbound_mails: each message read from the support mailbox, once (its Message-ID unique), with
  what became of it; the unmatched ones wait there for an account manager. Staff only (RLS).

Revision ID: 0020_mail_in
Revises: 0014_admin
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0020_mail_in"
down_revision = "0022_crm"
branch_labels = None
depends_on = None

CONTACT_ROLE = "portal_contact"

VALID_ZONE = """
CREATE FUNCTION portal_valid_time_zone(p_zone text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM now() AT TIME ZONE p_zone;
    RETURN p_zone ~ '^[A-Za-z][A-Za-z0-9_+/-]*$';
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END $$;
"""

# The covered windows of a contract, walked day by day in the customer's zone (services/sla.py
# _windows). SECURITY DEFINER: a contact's transaction reads the calendar without a grant on it.
COVERED = """
CREATE FUNCTION sla_covered_end(p_contract integer, p_start timestamptz, p_seconds numeric)
RETURNS timestamptz LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    k record;
    d date;
    a timestamptz;
    b timestamptz;
    remaining numeric := p_seconds;
    span numeric;
BEGIN
    SELECT c.coverage_days, c.coverage_start, c.coverage_end, u.timezone AS zone INTO k
      FROM service_contracts c JOIN customers u ON u.customer_id = c.customer_id
     WHERE c.contract_id = p_contract;
    IF k.coverage_days IS NULL THEN
        RETURN p_start + make_interval(secs => p_seconds::double precision);
    END IF;
    d := (p_start AT TIME ZONE k.zone)::date;
    FOR i IN 0..3700 LOOP
        IF extract(isodow FROM d)::smallint = ANY (k.coverage_days)
           AND NOT EXISTS (SELECT 1 FROM holidays h WHERE h.day = d) THEN
            a := greatest((d + k.coverage_start) AT TIME ZONE k.zone, p_start);
            b := (d + k.coverage_end) AT TIME ZONE k.zone;
            IF b > a THEN
                span := extract(epoch FROM b - a);
                IF remaining <= span THEN
                    RETURN a + make_interval(secs => remaining::double precision);
                END IF;
                remaining := remaining - span;
            END IF;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN NULL;
END $$;

CREATE FUNCTION sla_covered_seconds(p_contract integer, p_from timestamptz, p_to timestamptz)
RETURNS numeric LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    k record;
    d date;
    a timestamptz;
    b timestamptz;
    total numeric := 0;
BEGIN
    IF p_to <= p_from THEN
        RETURN 0;
    END IF;
    SELECT c.coverage_days, c.coverage_start, c.coverage_end, u.timezone AS zone INTO k
      FROM service_contracts c JOIN customers u ON u.customer_id = c.customer_id
     WHERE c.contract_id = p_contract;
    IF k.coverage_days IS NULL THEN
        RETURN extract(epoch FROM p_to - p_from);
    END IF;
    d := (p_from AT TIME ZONE k.zone)::date;
    LOOP
        a := (d + k.coverage_start) AT TIME ZONE k.zone;
        EXIT WHEN a >= p_to;
        IF extract(isodow FROM d)::smallint = ANY (k.coverage_days)
           AND NOT EXISTS (SELECT 1 FROM holidays h WHERE h.day = d) THEN
            a := greatest(a, p_from);
            b := least((d + k.coverage_end) AT TIME ZONE k.zone, p_to);
            IF b > a THEN
                total := total + extract(epoch FROM b - a);
            END IF;
        END IF;
        d := d + 1;
    END LOOP;
    RETURN total;
END $$;
"""

# support_ticket_contact_guard as 0009 wrote it, the SLA part now counting covered time:
# response due = the end of `response hours` of covered time from creation; resolution due = the
# end of `resolution hours` plus the covered time of every closed pause; "at risk" = the end of
# 75 % of the window (plus the pauses), as services/sla.py compute_sla.
GUARD_HEAD = """
CREATE OR REPLACE FUNCTION support_ticket_contact_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reopening boolean := OLD.status IN ('resolved', 'waiting_customer') AND NEW.status = 'in_progress';
    response_hours integer;
    resolution_hours integer;
    paused {paused_type};
    response_due timestamptz;
    resolution_due timestamptz;
    due timestamptz;
    at_risk timestamptz;
BEGIN
    IF current_user <> 'portal_contact' THEN
        RETURN NEW;
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT reopening THEN
        RAISE EXCEPTION 'a customer''s reply only takes a resolved or waiting ticket back to in progress'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.resolved_at IS DISTINCT FROM OLD.resolved_at
       AND NOT (reopening AND OLD.status = 'resolved' AND NEW.resolved_at IS NULL) THEN
        RAISE EXCEPTION 'only reopening a resolved ticket clears when it was resolved'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.response_due_at, NEW.resolution_due_at, NEW.sla_due_at, NEW.sla_at_risk_at)
       IS NOT DISTINCT FROM (OLD.response_due_at, OLD.resolution_due_at, OLD.sla_due_at, OLD.sla_at_risk_at) THEN
        RETURN NEW;
    END IF;
    SELECT k.response_time_hours, k.resolution_time_hours INTO response_hours, resolution_hours
      FROM service_contracts k WHERE k.contract_id = NEW.contract_id;
    IF response_hours IS NOT NULL AND resolution_hours IS NOT NULL THEN
        -- Each pause runs from a move into waiting_customer to the next move out of it.
        SELECT coalesce(sum({pause_measure}), {pause_zero}) INTO paused
          FROM (SELECT c.change_id, c.changed_at, c.to_status,
                       lag(c.to_status) OVER (ORDER BY c.changed_at, c.change_id) AS previous
                  FROM ticket_status_changes c WHERE c.ticket_id = NEW.ticket_id) s
         CROSS JOIN LATERAL (
                SELECT min(n.changed_at) AS at FROM ticket_status_changes n
                 WHERE n.ticket_id = NEW.ticket_id AND n.to_status <> 'waiting_customer'
                   AND (n.changed_at, n.change_id) > (s.changed_at, s.change_id)) ended
         WHERE s.to_status = 'waiting_customer' AND s.previous IS DISTINCT FROM 'waiting_customer'
           AND ended.at IS NOT NULL;
"""
GUARD_TAIL = """
    END IF;
    IF (NEW.response_due_at, NEW.resolution_due_at, NEW.sla_due_at, NEW.sla_at_risk_at)
       IS DISTINCT FROM (response_due, resolution_due, due, at_risk) THEN
        RAISE EXCEPTION 'the SLA deadlines are computed from the contract and the status log, not written'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
"""
GUARD_COVERED = GUARD_HEAD.format(
    paused_type="numeric", pause_measure="sla_covered_seconds(NEW.contract_id, s.changed_at, ended.at)",
    pause_zero="0") + """
        response_due := sla_covered_end(NEW.contract_id, NEW.created_at, response_hours * 3600);
        resolution_due := sla_covered_end(NEW.contract_id, NEW.created_at, resolution_hours * 3600 + paused);
        IF NEW.status IN ('waiting_customer', 'resolved', 'closed') THEN
            due := NULL;
        ELSIF NEW.first_response_at IS NULL AND response_due <= resolution_due THEN
            due := response_due;
            at_risk := sla_covered_end(NEW.contract_id, NEW.created_at, response_hours * 2700);
        ELSE
            due := resolution_due;
            at_risk := sla_covered_end(NEW.contract_id, NEW.created_at, resolution_hours * 2700 + paused);
        END IF;""" + GUARD_TAIL
GUARD_0009 = GUARD_HEAD.format(paused_type="interval", pause_measure="ended.at - s.changed_at",
                               pause_zero="interval '0'") + """
        response_due := NEW.created_at + make_interval(hours => response_hours);
        resolution_due := NEW.created_at + make_interval(hours => resolution_hours) + paused;
        IF NEW.status IN ('waiting_customer', 'resolved', 'closed') THEN
            due := NULL;
        ELSIF NEW.first_response_at IS NULL AND response_due <= resolution_due THEN
            due := response_due;
            at_risk := due - make_interval(secs => response_hours * 900);
        ELSE
            due := resolution_due;
            at_risk := due - make_interval(secs => resolution_hours * 900);
        END IF;""" + GUARD_TAIL

STAFF_ONLY = ("outbound_messages", "inbound_mails")


def upgrade():
    op.execute(VALID_ZONE)
    op.create_check_constraint("chk_customer_time_zone", "customers", "portal_valid_time_zone(timezone)")

    op.add_column("service_contracts", sa.Column("coverage_days", postgresql.ARRAY(sa.SmallInteger()),
                                                 nullable=True))
    op.add_column("service_contracts", sa.Column("coverage_start", sa.Time(), nullable=True))
    op.add_column("service_contracts", sa.Column("coverage_end", sa.Time(), nullable=True))
    op.create_check_constraint(
        "chk_contract_coverage", "service_contracts",
        "(coverage_days IS NULL AND coverage_start IS NULL AND coverage_end IS NULL)"
        " OR (cardinality(coverage_days) BETWEEN 1 AND 7 AND coverage_days <@ ARRAY[1,2,3,4,5,6,7]::smallint[]"
        " AND coverage_start IS NOT NULL AND coverage_end IS NOT NULL AND coverage_start < coverage_end)")

    op.create_table(
        "holidays",
        sa.Column("holiday_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("btrim(name) <> ''", name=op.f("chk_holiday_name")),
        sa.PrimaryKeyConstraint("holiday_id", name=op.f("holidays_pkey")),
        sa.UniqueConstraint("day", name=op.f("holidays_day_key")),
    )
    # A contact's reply recomputes its ticket's deadlines (services/sla.py reads the calendar).
    op.execute(f"GRANT SELECT ON holidays TO {CONTACT_ROLE}")
    op.execute(COVERED)
    op.execute(GUARD_COVERED)

    op.create_table(
        "outbound_messages",
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["support_tickets.ticket_id"],
                                name=op.f("outbound_messages_ticket_id_fkey"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id", name=op.f("outbound_messages_pkey")),
    )
    op.create_index("idx_outbound_messages_ticket", "outbound_messages", ["ticket_id"])
    op.create_table(
        "inbound_mails",
        sa.Column("inbound_mail_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("from_address", sa.String(length=255), nullable=False),
        sa.Column("from_name", sa.String(length=255), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("decided_by_employee_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("outcome IN ('ticketed', 'replied', 'unmatched', 'ignored', 'attached', 'discarded')",
                           name=op.f("chk_inbound_outcome")),
        sa.ForeignKeyConstraint(["ticket_id"], ["support_tickets.ticket_id"],
                                name=op.f("inbound_mails_ticket_id_fkey"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["comment_id"], ["ticket_comments.comment_id"],
                                name=op.f("inbound_mails_comment_id_fkey"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.customer_id"],
                                name=op.f("inbound_mails_customer_id_fkey"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["decided_by_employee_id"], ["employees.employee_id"],
                                name=op.f("inbound_mails_decided_by_employee_id_fkey")),
        sa.PrimaryKeyConstraint("inbound_mail_id", name=op.f("inbound_mails_pkey")),
        sa.UniqueConstraint("message_id", name=op.f("inbound_mails_message_id_key")),
    )
    op.create_index("idx_inbound_mails_outcome", "inbound_mails", ["outcome", "received_at", "inbound_mail_id"])
    op.create_index("idx_inbound_mails_sender", "inbound_mails", [sa.text("lower(from_address)"), "received_at"])
    for table in STAFF_ONLY:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY staff_all ON {table} USING (current_user <> '{CONTACT_ROLE}')"
                   f" WITH CHECK (current_user <> '{CONTACT_ROLE}')")


def downgrade():
    op.drop_table("inbound_mails")
    op.drop_table("outbound_messages")
    op.execute(GUARD_0009)
    op.execute("DROP FUNCTION sla_covered_seconds(integer, timestamptz, timestamptz)")
    op.execute("DROP FUNCTION sla_covered_end(integer, timestamptz, numeric)")
    op.execute(f"REVOKE ALL ON holidays FROM {CONTACT_ROLE}")
    op.drop_table("holidays")
    op.drop_constraint("chk_contract_coverage", "service_contracts", type_="check")
    op.drop_column("service_contracts", "coverage_end")
    op.drop_column("service_contracts", "coverage_start")
    op.drop_column("service_contracts", "coverage_days")
    op.drop_constraint("chk_customer_time_zone", "customers", type_="check")
    op.execute("DROP FUNCTION portal_valid_time_zone(text)")
