"""The outbox and the worker: procrastinate's job tables, and what the scheduled scans remember.

- procrastinate's schema (jobs, events, workers, periodic defers, its functions and types), as
  shipped with the installed procrastinate (pinned to 3.10.x in pyproject.toml: a newer
  procrastinate brings schema migrations of its own, applied by a new revision here). Its tables
  are outside the models, so autogenerate leaves them alone (migrations/env.py, include_name).
- Contacts' transactions (role portal_contact) enqueue jobs too (a contact's reply mails nobody
  yet, but a sponsor's decision mails the project manager, and the webhooks of the REST API
  follow contacts' tickets): they may INSERT job rows and read back only their ids, never the
  arguments of anyone's jobs.
- contract_expiry_notices: which "contract.expiring" stages (90, 60, 30 days before the end) were
  emitted for which contract, so each is emitted once, whatever runs the scan how often.

Revision ID: 0008_outbox_and_worker
Revises: 0007_customer_portal
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "0008_outbox_and_worker"
down_revision = "0007_customer_portal"
branch_labels = None
depends_on = None

CONTACT_GRANTS = [
    "GRANT INSERT ON procrastinate_jobs, procrastinate_events TO portal_contact",
    "GRANT SELECT (id) ON procrastinate_jobs TO portal_contact",
    "GRANT USAGE ON SEQUENCE procrastinate_jobs_id_seq, procrastinate_events_id_seq TO portal_contact",
]

DROP_PROCRASTINATE = """
DO $$
DECLARE item record;
BEGIN
    FOR item IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
                AND tablename LIKE 'procrastinate\\_%' LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', item.tablename);
    END LOOP;
    FOR item IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
                JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%' LOOP
        EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', item.signature);
    END LOOP;
    FOR item IN SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = current_schema() AND t.typname LIKE 'procrastinate\\_%' AND t.typtype IN ('e', 'c')
                AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid AND c.relkind <> 'c') LOOP
        EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', item.typname);
    END LOOP;
END $$;
"""


def upgrade():
    from procrastinate.schema import SchemaManager

    # Sent to the driver as it is (no bind-parameter parsing of its colons); percent signs doubled,
    # as procrastinate's own `schema --apply` does.
    op.get_bind().exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
    for grant in CONTACT_GRANTS:
        op.execute(grant)
    op.create_table(
        "contract_expiry_notices",
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("days_before", sa.SmallInteger(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=False),
        sa.Column("emitted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("days_before IN (30, 60, 90)", name="chk_expiry_stage"),
        sa.ForeignKeyConstraint(["contract_id"], ["service_contracts.contract_id"], ondelete="CASCADE",
                                name=op.f("contract_expiry_notices_contract_id_fkey")),
        sa.PrimaryKeyConstraint("contract_id", "end_date", "days_before", name=op.f("contract_expiry_notices_pkey")),
    )


def downgrade():
    op.drop_table("contract_expiry_notices")
    op.execute(DROP_PROCRASTINATE)
