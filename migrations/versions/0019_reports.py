"""Reports: report_time_month, approved hours per month, customer and employee, kept by triggers.

The profitability report sums the internal cost of every approved hour of twelve months: on five
million time entries that is over a second by any index. This table holds the same hours summed
per (month, customer, employee), a few thousand rows, kept current in the same transaction by
three statement-level triggers on time_entries reading their transition tables (one upsert per
statement and group, so a bulk insert or an approval of hundreds of entries costs one statement).
A group that falls to zero hours is deleted. The backfill sums what is there already.

report_unbilled: unbilled work per customer (approved billable time on no live invoice line), for
the account managers' home; the rule is an anti-join of millions of entries with the invoice
lines, so the worker rewrites this table every five minutes (scan.unbilled_work) and the home
page says as of when. The first rows come with the worker's first run.

idx_time_pending: the staff homes' sums of time waiting for approval by index alone, and an
employee's pending entries by day (timesheet, approvals).

Revision ID: 0019_reports
Revises: 0014_admin
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0019_reports"
down_revision = "0020_mail_in"
branch_labels = None
depends_on = None

CONTACT_ROLE = "portal_contact"

APPLY = """
CREATE FUNCTION report_time_month_apply() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The statement's net change per group: minus the old approved rows, plus the new ones.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO report_time_month AS s (month, customer_id, employee_id, approved_hours)
        SELECT date_trunc('month', work_date)::date, customer_id, employee_id, SUM(hours_worked)
        FROM new_rows WHERE approval_status = 'approved' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (month, customer_id, employee_id)
        DO UPDATE SET approved_hours = s.approved_hours + EXCLUDED.approved_hours;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO report_time_month AS s (month, customer_id, employee_id, approved_hours)
        SELECT month, customer_id, employee_id, SUM(hours) FROM (
            SELECT date_trunc('month', work_date)::date AS month, customer_id, employee_id, -hours_worked AS hours
            FROM old_rows WHERE approval_status = 'approved'
            UNION ALL
            SELECT date_trunc('month', work_date)::date, customer_id, employee_id, hours_worked
            FROM new_rows WHERE approval_status = 'approved') AS d
        GROUP BY 1, 2, 3 HAVING SUM(hours) <> 0 ORDER BY 1, 2, 3  -- one lock order for every writer
        ON CONFLICT (month, customer_id, employee_id)
        DO UPDATE SET approved_hours = s.approved_hours + EXCLUDED.approved_hours;
    ELSE
        UPDATE report_time_month AS s SET approved_hours = s.approved_hours - d.hours
        FROM (SELECT date_trunc('month', work_date)::date AS month, customer_id, employee_id,
                     SUM(hours_worked) AS hours
              FROM old_rows WHERE approval_status = 'approved' GROUP BY 1, 2, 3) AS d
        WHERE s.month = d.month AND s.customer_id = d.customer_id AND s.employee_id = d.employee_id;
    END IF;
    DELETE FROM report_time_month AS s
    USING (SELECT DISTINCT date_trunc('month', work_date)::date AS month, customer_id, employee_id
           FROM old_rows WHERE approval_status = 'approved') AS d
    WHERE s.month = d.month AND s.customer_id = d.customer_id AND s.employee_id = d.employee_id
      AND s.approved_hours = 0;
    RETURN NULL;
END $$;
"""


def upgrade():
    op.create_table(
        "report_time_month",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("employee_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("approved_hours", sa.Numeric(14, 2), nullable=False),
        sa.PrimaryKeyConstraint("month", "customer_id", "employee_id", name=op.f("pk_report_time_month")),
    )
    # Unbilled work per customer, rewritten by the worker's scan.unbilled_work every five minutes.
    op.create_table(
        "report_unbilled",
        sa.Column("customer_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("hours", sa.Numeric(14, 2), nullable=False),
        sa.Column("amount", sa.Numeric(14, 2), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_report_unbilled")),
    )
    # The staff homes sum the time waiting for approval (an author's, the team's support time): by
    # this partial index alone, never the millions of approved entries.
    op.create_index("idx_time_pending", "time_entries", ["employee_id", "work_date"],
                    postgresql_include=["hours_worked", "ticket_id"],
                    postgresql_where=sa.text("approval_status = 'pending'"))
    op.execute(APPLY)
    op.execute("CREATE TRIGGER report_time_month_insert AFTER INSERT ON time_entries "
               "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION report_time_month_apply()")
    op.execute("CREATE TRIGGER report_time_month_update AFTER UPDATE ON time_entries "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT "
               "EXECUTE FUNCTION report_time_month_apply()")
    op.execute("CREATE TRIGGER report_time_month_delete AFTER DELETE ON time_entries "
               "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION report_time_month_apply()")
    # Staff-only summaries: row-level security like every table with customer data, no contact policy
    # (contacts have no grant on them either).
    for table in ("report_time_month", "report_unbilled"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY staff_all ON {table} USING (current_user <> '{CONTACT_ROLE}')"
                   f" WITH CHECK (current_user <> '{CONTACT_ROLE}')")
    op.execute("""INSERT INTO report_time_month (month, customer_id, employee_id, approved_hours)
                  SELECT date_trunc('month', work_date)::date, customer_id, employee_id, SUM(hours_worked)
                  FROM time_entries WHERE approval_status = 'approved' GROUP BY 1, 2, 3
                  HAVING SUM(hours_worked) <> 0""")


def downgrade():
    for name in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER report_time_month_{name} ON time_entries")
    op.execute("DROP FUNCTION report_time_month_apply()")
    op.drop_index("idx_time_pending", table_name="time_entries")
    op.drop_table("report_time_month")
    op.drop_table("report_unbilled")
