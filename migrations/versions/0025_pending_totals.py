"""Time waiting for approval, summed per author and work, kept by triggers (issue 14).

pending_time_totals: the count, hours and value (hours x billing rate) of the pending time entries per
(employee, project), project 0 standing for support time (entries on tickets). The approvals page shows
the count and totals of every entry its reader may decide, and the senior's and admin's homes the
team's support time waiting: on the large data set that summed 21,000-29,000 pending entries on every
request (10-12 ms of the approvals page's 24-29, 5 ms of the admin's home). The table has a row per
author and project with pending time (3,500 on the large data set), kept current in the same transaction by three
statement-level triggers on time_entries reading their transition tables, as report_time_month is
(migration 0019): one upsert per statement, groups in one lock order, a group that falls to no
entries deleted, a group that would fall below none an error (the totals were written out of step). The backfill sums what is there already.

idx_tickets_at_risk gains assigned_employee_id (INCLUDE): "my tickets at risk" on the homes counted
from the index alone; it fetched every at-risk ticket of the team to look at its assignee (4.5 ms).

Revision ID: 0025_pending_totals
Revises: 0024_lookups
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0025_pending_totals"
down_revision = "0024_lookups"
branch_labels = None
depends_on = None

CONTACT_ROLE = "portal_contact"

# The statement's net change per group: minus the old pending rows, plus the new ones.
APPLY = """
CREATE FUNCTION pending_time_totals_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO pending_time_totals AS s (employee_id, project_id, entries, hours, value)
        SELECT employee_id, coalesce(project_id, 0), count(*), sum(hours_worked), sum(hours_worked * billing_rate)
        FROM new_rows WHERE approval_status = 'pending' GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (employee_id, project_id) DO UPDATE SET entries = s.entries + EXCLUDED.entries,
            hours = s.hours + EXCLUDED.hours, value = s.value + EXCLUDED.value;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO pending_time_totals AS s (employee_id, project_id, entries, hours, value)
        SELECT employee_id, project_id, sum(n), sum(h), sum(v) FROM (
            SELECT employee_id, coalesce(project_id, 0) AS project_id, -1 AS n, -hours_worked AS h,
                   -hours_worked * billing_rate AS v
            FROM old_rows WHERE approval_status = 'pending'
            UNION ALL
            SELECT employee_id, coalesce(project_id, 0), 1, hours_worked, hours_worked * billing_rate
            FROM new_rows WHERE approval_status = 'pending') AS d
        GROUP BY 1, 2 HAVING sum(n) <> 0 OR sum(h) <> 0 OR sum(v) <> 0
        ORDER BY 1, 2  -- one lock order for every writer
        ON CONFLICT (employee_id, project_id) DO UPDATE SET entries = s.entries + EXCLUDED.entries,
            hours = s.hours + EXCLUDED.hours, value = s.value + EXCLUDED.value;
    ELSE
        INSERT INTO pending_time_totals AS s (employee_id, project_id, entries, hours, value)
        SELECT employee_id, coalesce(project_id, 0), -count(*), -sum(hours_worked), -sum(hours_worked * billing_rate)
        FROM old_rows WHERE approval_status = 'pending' GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (employee_id, project_id) DO UPDATE SET entries = s.entries + EXCLUDED.entries,
            hours = s.hours + EXCLUDED.hours, value = s.value + EXCLUDED.value;
    END IF;
    -- Only groups that lost pending entries can fall to nothing, or below it: the latter means the totals
    -- were out of step with the entries (written with triggers off and not rebuilt), which must not pass.
    IF EXISTS (SELECT 1 FROM pending_time_totals AS s
               JOIN (SELECT DISTINCT employee_id, coalesce(project_id, 0) AS project_id
                     FROM old_rows WHERE approval_status = 'pending') AS d
                 ON s.employee_id = d.employee_id AND s.project_id = d.project_id
               WHERE s.entries < 0 OR s.hours < 0 OR s.value < 0) THEN
        RAISE EXCEPTION 'pending_time_totals is out of step with time_entries; rebuild it from the entries'
            USING HINT = 'DELETE FROM pending_time_totals, then INSERT the sums of migration 0025''s backfill';
    END IF;
    DELETE FROM pending_time_totals AS s
    USING (SELECT DISTINCT employee_id, coalesce(project_id, 0) AS project_id
           FROM old_rows WHERE approval_status = 'pending') AS d
    WHERE s.employee_id = d.employee_id AND s.project_id = d.project_id AND s.entries = 0;
    RETURN NULL;
END $$;
"""

BACKFILL = """
INSERT INTO pending_time_totals (employee_id, project_id, entries, hours, value)
SELECT employee_id, coalesce(project_id, 0), count(*), sum(hours_worked), sum(hours_worked * billing_rate)
FROM time_entries WHERE approval_status = 'pending' GROUP BY 1, 2
"""


def upgrade():
    op.create_table(
        "pending_time_totals",
        sa.Column("employee_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("project_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("hours", sa.Numeric(14, 2), nullable=False),
        sa.Column("value", sa.Numeric(18, 4), nullable=False),
        sa.PrimaryKeyConstraint("employee_id", "project_id", name=op.f("pk_pending_time_totals")),
    )
    op.execute(APPLY)
    op.execute("CREATE TRIGGER pending_time_totals_insert AFTER INSERT ON time_entries "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION pending_time_totals_apply()")
    op.execute("CREATE TRIGGER pending_time_totals_update AFTER UPDATE ON time_entries "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
               "EXECUTE FUNCTION pending_time_totals_apply()")
    op.execute("CREATE TRIGGER pending_time_totals_delete AFTER DELETE ON time_entries "
               "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION pending_time_totals_apply()")
    # Staff only, like the reports' summaries: row-level security without a contact policy.
    op.execute("ALTER TABLE pending_time_totals ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE pending_time_totals FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY staff_all ON pending_time_totals USING (current_user <> '{CONTACT_ROLE}')"
               f" WITH CHECK (current_user <> '{CONTACT_ROLE}')")
    op.execute(BACKFILL)
    op.execute("DROP INDEX idx_tickets_at_risk")
    op.execute("CREATE INDEX idx_tickets_at_risk ON support_tickets (sla_at_risk_at) INCLUDE (assigned_employee_id)"
               " WHERE status IN ('open', 'assigned', 'in_progress')")


def downgrade():
    op.execute("DROP INDEX idx_tickets_at_risk")
    op.execute("CREATE INDEX idx_tickets_at_risk ON support_tickets (sla_at_risk_at)"
               " WHERE status IN ('open', 'assigned', 'in_progress')")
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER pending_time_totals_{name} ON time_entries")
    op.execute("DROP FUNCTION pending_time_totals_apply()")
    op.drop_table("pending_time_totals")
