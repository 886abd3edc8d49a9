"""A contact's role may write exactly what the portal writes for a contact, nothing more.

Row-level security let `portal_contact` update the status, resolved_at and SLA columns of any of
its company's tickets, reply to a colleague's ticket, and set a phase's approval or its status
without being a sponsor. Now, as the portal's own rules (services/policy.py) say:

- support_tickets: a contact updates only a ticket it may see (its own, or any of the company's
  for a primary contact). A guard trigger lets such an update move the status only as a
  customer's reply does (resolved or waiting for the customer -> in progress), clear resolved_at
  only with that reopening, and write the SLA columns only with the values services/sla.py
  computes from the contract and the status log (the trigger computes them again, in SQL).
- ticket_comments, ticket_attachments, ticket_status_changes: a contact adds rows only to a
  ticket it may see that is not closed; its status log rows are a new ticket's first entry or
  the reopening move.
- project_phases: only a sponsor updates a phase, only its approval or rejection columns (the
  grant on phase_status is revoked), and a guard trigger lets that be one decision, by that
  sponsor, on a phase the manager sent for approval that is still planned and undecided, of a
  project still open.
- portal_retire_own_login_links(at): a contact who changes their password retires the open
  reset and invitation links of their own login (contacts may not read auth_tokens at all).

Revision ID: 0009_narrow_contact_rights
Revises: 0008_outbox_and_worker
Create Date: 2026-11-30
"""
from alembic import op

revision = "0009_narrow_contact_rights"
down_revision = "0008_outbox_and_worker"
branch_labels = None
depends_on = None

# Who the contact is, for the policies (read as the contact, so row-level security applies too).
FLAGS = """
CREATE FUNCTION portal_contact_is_primary() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM contacts c WHERE c.contact_id = portal_contact_id()
                   AND c.customer_id = portal_customer_id() AND c.is_primary_contact)
$$;
CREATE FUNCTION portal_contact_is_sponsor() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM contacts c WHERE c.contact_id = portal_contact_id()
                   AND c.customer_id = portal_customer_id() AND c.can_approve_projects)
$$;
"""

# The tickets a contact may see (policy.may_see_ticket): its own, or every one of the company's
# for a primary contact.
VISIBLE = ("customer_id = portal_customer_id()"
           " AND (contact_id = portal_contact_id() OR portal_contact_is_primary())")
OPEN_VISIBLE_TICKET = ("EXISTS (SELECT 1 FROM support_tickets t WHERE t.ticket_id = {table}.ticket_id"
                       " AND t.customer_id = portal_customer_id()"
                       " AND (t.contact_id = portal_contact_id() OR portal_contact_is_primary())"
                       " AND t.status <> 'closed')")

# The SLA columns a contact's transaction writes must be exactly what services/sla.py computes
# (compute_sla and paused_time, whose SQL twin this is): response due = created + the contract's
# response hours; resolution due = created + resolution hours + every closed pause in the status
# log; the next deadline and its "at risk" moment (25 % of the window before it) follow from those.
TICKET_GUARD = """
CREATE FUNCTION support_ticket_contact_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    reopening boolean := OLD.status IN ('resolved', 'waiting_customer') AND NEW.status = 'in_progress';
    response_hours integer;
    resolution_hours integer;
    paused interval;
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
        SELECT coalesce(sum(ended.at - s.changed_at), interval '0') INTO paused
          FROM (SELECT c.change_id, c.changed_at, c.to_status,
                       lag(c.to_status) OVER (ORDER BY c.changed_at, c.change_id) AS previous
                  FROM ticket_status_changes c WHERE c.ticket_id = NEW.ticket_id) s
         CROSS JOIN LATERAL (
                SELECT min(n.changed_at) AS at FROM ticket_status_changes n
                 WHERE n.ticket_id = NEW.ticket_id AND n.to_status <> 'waiting_customer'
                   AND (n.changed_at, n.change_id) > (s.changed_at, s.change_id)) ended
         WHERE s.to_status = 'waiting_customer' AND s.previous IS DISTINCT FROM 'waiting_customer'
           AND ended.at IS NOT NULL;
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
        END IF;
    END IF;
    IF (NEW.response_due_at, NEW.resolution_due_at, NEW.sla_due_at, NEW.sla_at_risk_at)
       IS DISTINCT FROM (response_due, resolution_due, due, at_risk) THEN
        RAISE EXCEPTION 'the SLA deadlines are computed from the contract and the status log, not written'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trg_ticket_contact_guard BEFORE UPDATE ON support_tickets
    FOR EACH ROW EXECUTE FUNCTION support_ticket_contact_guard();
"""

PHASE_OF_CUSTOMER = ("EXISTS (SELECT 1 FROM projects p WHERE p.project_id = project_phases.project_id"
                     " AND p.customer_id = portal_customer_id())")

PHASE_GUARD = """
CREATE FUNCTION project_phase_decision_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_user <> 'portal_contact' THEN
        RETURN NEW;
    END IF;
    IF NOT (OLD.requires_approval AND OLD.approval_requested_at IS NOT NULL AND OLD.approved_at IS NULL
            AND OLD.rejected_at IS NULL AND OLD.phase_status = 'planning'
            AND EXISTS (SELECT 1 FROM projects p WHERE p.project_id = OLD.project_id
                        AND p.project_status IN ('planning', 'active', 'on_hold'))) THEN
        RAISE EXCEPTION 'a sponsor decides only a phase sent for approval that is still planned and undecided'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NOT ((NEW.approved_at IS NOT NULL AND NEW.approved_by_contact_id = portal_contact_id()
             AND NEW.rejected_at IS NULL AND NEW.rejected_by_contact_id IS NULL AND NEW.rejection_reason IS NULL)
            OR (NEW.rejected_at IS NOT NULL AND NEW.rejected_by_contact_id = portal_contact_id()
                AND btrim(coalesce(NEW.rejection_reason, '')) <> ''
                AND NEW.approved_at IS NULL AND NEW.approved_by_contact_id IS NULL)) THEN
        RAISE EXCEPTION 'a decision is one approval or one rejection with a reason, by the sponsor who makes it'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER trg_phase_decision_guard BEFORE UPDATE ON project_phases
    FOR EACH ROW EXECUTE FUNCTION project_phase_decision_guard();
"""

RETIRE_LINKS = """
CREATE FUNCTION portal_retire_own_login_links(p_at timestamptz) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    UPDATE auth_tokens SET used_at = p_at
     WHERE used_at IS NULL
       AND account_id = (SELECT a.account_id FROM accounts a WHERE a.contact_id = portal_contact_id())
$$;
REVOKE EXECUTE ON FUNCTION portal_retire_own_login_links(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION portal_retire_own_login_links(timestamptz) TO portal_contact;
"""

# What 0002, 0003, 0005 and 0007 left, for the downgrade.
OLD_TICKET_OF_CUSTOMER = ("EXISTS (SELECT 1 FROM support_tickets t WHERE t.ticket_id = {table}.ticket_id"
                          " AND t.customer_id = portal_customer_id())")
OLD_ATTACHMENT_INSERT = (
    "uploaded_by_contact_id = portal_contact_id() AND uploaded_by_employee_id IS NULL"
    " AND " + OLD_TICKET_OF_CUSTOMER.format(table="ticket_attachments")
    + " AND (comment_id IS NULL OR EXISTS (SELECT 1 FROM ticket_comments c"
    " WHERE c.comment_id = ticket_attachments.comment_id AND NOT c.is_internal"
    " AND c.ticket_id = ticket_attachments.ticket_id))")


def _replace_policy(table: str, name: str, command: str, using: str | None, check: str) -> None:
    op.execute(f"DROP POLICY {name} ON {table}")
    op.execute(f"CREATE POLICY {name} ON {table} FOR {command} TO portal_contact"
               + (f" USING ({using})" if using else "") + f" WITH CHECK ({check})")


def upgrade():
    op.execute(FLAGS)
    _replace_policy("support_tickets", "contact_update", "UPDATE", VISIBLE, VISIBLE)
    op.execute(TICKET_GUARD)
    _replace_policy("ticket_comments", "contact_insert", "INSERT", None,
                    "author_contact_id = portal_contact_id() AND author_employee_id IS NULL AND NOT is_internal"
                    " AND " + OPEN_VISIBLE_TICKET.format(table="ticket_comments"))
    _replace_policy("ticket_attachments", "contact_insert", "INSERT", None,
                    "uploaded_by_contact_id = portal_contact_id() AND uploaded_by_employee_id IS NULL"
                    " AND " + OPEN_VISIBLE_TICKET.format(table="ticket_attachments")
                    + " AND (comment_id IS NULL OR EXISTS (SELECT 1 FROM ticket_comments c"
                    " WHERE c.comment_id = ticket_attachments.comment_id AND NOT c.is_internal"
                    " AND c.ticket_id = ticket_attachments.ticket_id))")
    _replace_policy("ticket_status_changes", "contact_insert", "INSERT", None,
                    "actor_type = 'contact' AND actor_id = portal_contact_id()"
                    " AND ((from_status IS NULL AND to_status = 'open')"
                    " OR (from_status IN ('resolved', 'waiting_customer') AND to_status = 'in_progress'))"
                    " AND " + OPEN_VISIBLE_TICKET.format(table="ticket_status_changes"))
    _replace_policy("project_phases", "contact_update", "UPDATE",
                    f"{PHASE_OF_CUSTOMER} AND portal_contact_is_sponsor()",
                    f"{PHASE_OF_CUSTOMER} AND portal_contact_is_sponsor()"
                    " AND (approved_by_contact_id IS NULL OR approved_by_contact_id = portal_contact_id())"
                    " AND (rejected_by_contact_id IS NULL OR rejected_by_contact_id = portal_contact_id())")
    op.execute("REVOKE UPDATE (phase_status) ON project_phases FROM portal_contact")
    op.execute(PHASE_GUARD)
    op.execute(RETIRE_LINKS)


def downgrade():
    op.execute("DROP FUNCTION portal_retire_own_login_links(timestamptz)")
    op.execute("DROP TRIGGER trg_phase_decision_guard ON project_phases")
    op.execute("DROP FUNCTION project_phase_decision_guard()")
    op.execute("GRANT UPDATE (phase_status) ON project_phases TO portal_contact")
    _replace_policy("project_phases", "contact_update", "UPDATE", PHASE_OF_CUSTOMER,
                    f"{PHASE_OF_CUSTOMER} AND (approved_by_contact_id IS NULL OR approved_by_contact_id ="
                    " portal_contact_id()) AND (rejected_by_contact_id IS NULL OR rejected_by_contact_id ="
                    " portal_contact_id())")
    _replace_policy("ticket_status_changes", "contact_insert", "INSERT", None,
                    "actor_type = 'contact' AND actor_id = portal_contact_id() AND "
                    + OLD_TICKET_OF_CUSTOMER.format(table="ticket_status_changes"))
    _replace_policy("ticket_attachments", "contact_insert", "INSERT", None, OLD_ATTACHMENT_INSERT)
    _replace_policy("ticket_comments", "contact_insert", "INSERT", None,
                    "author_contact_id = portal_contact_id() AND author_employee_id IS NULL AND NOT is_internal AND "
                    + OLD_TICKET_OF_CUSTOMER.format(table="ticket_comments"))
    op.execute("DROP TRIGGER trg_ticket_contact_guard ON support_tickets")
    op.execute("DROP FUNCTION support_ticket_contact_guard()")
    _replace_policy("support_tickets", "contact_update", "UPDATE", "customer_id = portal_customer_id()",
                    "customer_id = portal_customer_id()")
    op.execute("DROP FUNCTION portal_contact_is_sponsor()")
    op.execute("DROP FUNCTION portal_contact_is_primary()")
