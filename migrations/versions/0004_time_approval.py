"""Time approval: rejections with a reason, and approved time feeding the project's actual cost.

- time_entries gets rejection_reason, rejected_at and rejected_by_employee_id; a rejected entry
  must say why (chk_rejection_reason).
- update_project_cost keeps projects.actual_cost = approved hours x billing rate of the project's
  entries, recomputing both projects when an entry moves (as update_ticket_hours does for tickets).

Revision ID: 0004_time_approval
Revises: 0003_ticket_queue
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0004_time_approval"
down_revision = "0003_ticket_queue"
branch_labels = None
depends_on = None

PROJECT_COST = """
CREATE FUNCTION update_project_cost() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.project_id IS NOT NULL THEN
        UPDATE projects
           SET actual_cost = (SELECT COALESCE(round(SUM(hours_worked * billing_rate), 2), 0)
                                FROM time_entries
                               WHERE project_id = OLD.project_id AND approval_status = 'approved')
         WHERE project_id = OLD.project_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.project_id IS NOT NULL
       AND (TG_OP = 'INSERT' OR NEW.project_id IS DISTINCT FROM OLD.project_id) THEN
        UPDATE projects
           SET actual_cost = (SELECT COALESCE(round(SUM(hours_worked * billing_rate), 2), 0)
                                FROM time_entries
                               WHERE project_id = NEW.project_id AND approval_status = 'approved')
         WHERE project_id = NEW.project_id;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_update_project_cost
    AFTER INSERT OR DELETE OR UPDATE OF project_id, hours_worked, billing_rate, approval_status ON time_entries
    FOR EACH ROW EXECUTE FUNCTION update_project_cost();

UPDATE projects p
   SET actual_cost = (SELECT COALESCE(round(SUM(hours_worked * billing_rate), 2), 0) FROM time_entries t
                       WHERE t.project_id = p.project_id AND t.approval_status = 'approved');
"""


def upgrade():
    op.add_column("time_entries", sa.Column("rejection_reason", sa.Text(), nullable=True))
    op.add_column("time_entries", sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("time_entries", sa.Column("rejected_by_employee_id", sa.Integer(), nullable=True))
    op.create_foreign_key(op.f("time_entries_rejected_by_employee_id_fkey"), "time_entries", "employees",
                          ["rejected_by_employee_id"], ["employee_id"])
    op.create_check_constraint("chk_rejection_reason", "time_entries",
                               "approval_status <> 'rejected' OR rejection_reason ~ '[^[:space:]]'")
    op.execute(PROJECT_COST)


def downgrade():
    op.execute("DROP TRIGGER trg_update_project_cost ON time_entries")
    op.execute("DROP FUNCTION update_project_cost()")
    op.drop_constraint("chk_rejection_reason", "time_entries", type_="check")
    op.drop_constraint(op.f("time_entries_rejected_by_employee_id_fkey"), "time_entries", type_="foreignkey")
    for column in ("rejected_by_employee_id", "rejected_at", "rejection_reason"):
        op.drop_column("time_entries", column)
