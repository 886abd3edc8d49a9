"""Billing (issue 11): what each line bills, held by the database; payments; the kept PDF; month-end runs.

- invoices.period_start / period_end: the billing period an invoice was made for (shown on the
  page and the PDF); cancelled_at; and paid_amount may never exceed the total (an over-payment is
  refused by the database too, whatever two clerks do at once).
- invoice_line_items.live: false once the invoice is cancelled, kept so by triggers (a line of a
  cancelled invoice stays on it for the record, but no longer holds what it billed). contract_id
  and billing_month say which contract month a line bills (its fee, or the allowance its hours
  used), included_hours how much of that month's allowance it used.
- Two partial unique indexes over live lines: a time entry is billed once
  (idx_line_items_time_entry, now only over live lines, so cancelling frees it) and a contract
  month's fee is billed once (idx_line_items_fee_month). Eight runs at once cannot bill either twice.
- payments: each payment of an invoice (date, amount, method, reference); contacts read their own.
- invoice_documents: the PDF made when the invoice was sent, never changed (a trigger refuses).
- invoice_runs / invoice_run_items: the month-end run and what it did for each customer; one run
  per period at a time (a partial unique index), one outcome per customer and run (the key); the
  customers split into `lanes` that workers bill side by side (lanes_done: a bit per finished lane).

Revision ID: 0018_billing
Revises: 0014_admin
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0018_billing"
down_revision = "0014_admin"
branch_labels = None
depends_on = None

CONTACT_ROLE = "portal_contact"

LIVE_TRIGGERS = """
-- A line is live while its invoice is not cancelled: set on every insert and update of a line...
CREATE FUNCTION invoice_line_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.live := NOT EXISTS (SELECT 1 FROM invoices i WHERE i.invoice_id = NEW.invoice_id
                                                        AND i.invoice_status = 'cancelled');
    RETURN NEW;
END;
$$;
CREATE TRIGGER trg_invoice_line_live
    BEFORE INSERT OR UPDATE ON invoice_line_items
    FOR EACH ROW EXECUTE FUNCTION invoice_line_live();

-- ...and on every line of an invoice when it is cancelled. Cancelled is final: its lines gave up
-- their entries and fee months, which may be billed again since.
CREATE FUNCTION invoice_cancel_frees_lines() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.invoice_status = 'cancelled' AND NEW.invoice_status <> 'cancelled' THEN
        RAISE EXCEPTION 'a cancelled invoice stays cancelled (invoice %)', OLD.invoice_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'chk_cancelled_is_final';
    END IF;
    IF NEW.invoice_status = 'cancelled' AND OLD.invoice_status <> 'cancelled' THEN
        UPDATE invoice_line_items SET live = false WHERE invoice_id = NEW.invoice_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER trg_invoice_cancel_frees_lines
    AFTER UPDATE OF invoice_status ON invoices
    FOR EACH ROW EXECUTE FUNCTION invoice_cancel_frees_lines();

-- The PDF a customer received never changes.
CREATE FUNCTION invoice_document_is_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'an invoice''s sent document never changes (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

# Payments never exceed the total, checked when the transaction commits (a deferred constraint
# trigger: an invoice's row is written before its lines, which make its total).
NOT_OVERPAID = """
CREATE FUNCTION invoice_not_overpaid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM invoices WHERE invoice_id = NEW.invoice_id AND paid_amount > total_amount) THEN
        RAISE EXCEPTION 'invoice % would be paid more than its total', NEW.invoice_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'chk_invoice_not_overpaid';
    END IF;
    RETURN NULL;
END;
$$;
CREATE CONSTRAINT TRIGGER chk_invoice_not_overpaid AFTER INSERT OR UPDATE OF paid_amount, total_amount ON invoices
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION invoice_not_overpaid();
"""

# The invoice's subtotal follows its lines, as the seed's trigger keeps it (errata 6), but once per
# statement over the rows it changed (transition tables), not once per line: writing an invoice's
# 1,000 lines in one INSERT summed its lines a thousand times (a second, of the 200 ms allowed).
SUBTOTAL_OF = ("(SELECT COALESCE(SUM(CASE WHEN l.item_type = 'discount' THEN -l.line_total ELSE l.line_total END), 0)"
               " FROM invoice_line_items l WHERE l.invoice_id = i.invoice_id)")
STATEMENT_TOTALS = f"""
DROP TRIGGER trg_update_invoice_totals ON invoice_line_items;
CREATE OR REPLACE FUNCTION update_invoice_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE invoices i SET subtotal = {SUBTOTAL_OF} WHERE i.invoice_id IN (SELECT invoice_id FROM new_rows);
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE invoices i SET subtotal = {SUBTOTAL_OF} WHERE i.invoice_id IN (SELECT invoice_id FROM old_rows);
    ELSE
        UPDATE invoices i SET subtotal = {SUBTOTAL_OF}
         WHERE i.invoice_id IN (SELECT invoice_id FROM old_rows UNION SELECT invoice_id FROM new_rows);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER trg_update_invoice_totals AFTER INSERT ON invoice_line_items
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION update_invoice_totals();
CREATE TRIGGER trg_update_invoice_totals_update AFTER UPDATE ON invoice_line_items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION update_invoice_totals();
CREATE TRIGGER trg_update_invoice_totals_delete AFTER DELETE ON invoice_line_items
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION update_invoice_totals();
"""
ROW_TOTALS = """
DROP TRIGGER trg_update_invoice_totals_delete ON invoice_line_items;
DROP TRIGGER trg_update_invoice_totals_update ON invoice_line_items;
DROP TRIGGER trg_update_invoice_totals ON invoice_line_items;
CREATE OR REPLACE FUNCTION update_invoice_totals() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE invoices
           SET subtotal = (SELECT COALESCE(SUM(CASE WHEN item_type = 'discount'
                                                    THEN -line_total ELSE line_total END), 0)
                             FROM invoice_line_items WHERE invoice_id = OLD.invoice_id)
         WHERE invoice_id = OLD.invoice_id;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.invoice_id IS DISTINCT FROM OLD.invoice_id) THEN
        UPDATE invoices
           SET subtotal = (SELECT COALESCE(SUM(CASE WHEN item_type = 'discount'
                                                    THEN -line_total ELSE line_total END), 0)
                             FROM invoice_line_items WHERE invoice_id = NEW.invoice_id)
         WHERE invoice_id = NEW.invoice_id;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER trg_update_invoice_totals
    AFTER INSERT OR UPDATE OR DELETE ON invoice_line_items
    FOR EACH ROW EXECUTE FUNCTION update_invoice_totals();
"""

# Existing data: fill what each line bills from what it says, so the new keys hold it too.
BACKFILL = [
    "UPDATE invoice_line_items SET live = false WHERE invoice_id IN"
    " (SELECT invoice_id FROM invoices WHERE invoice_status = 'cancelled')",
    # Hourly lines: the month of the work, the contract in force on its day (support work only),
    # and the included hours the line counted (all of them at 0.00, else what it did not bill).
    """UPDATE invoice_line_items l
          SET billing_month = date_trunc('month', t.work_date)::date,
              contract_id = (SELECT c.contract_id FROM service_contracts c
                              WHERE c.customer_id = t.customer_id AND t.ticket_id IS NOT NULL
                                AND c.contract_status IN ('active', 'expired')
                                AND t.work_date BETWEEN c.start_date AND c.end_date
                              ORDER BY c.start_date DESC LIMIT 1),
              included_hours = CASE WHEN l.unit_price = 0 THEN t.hours_worked
                                    ELSE greatest(t.hours_worked - l.quantity, 0) END
         FROM time_entries t
        WHERE t.entry_id = l.time_entry_id""",
    "UPDATE invoice_line_items SET included_hours = 0 WHERE contract_id IS NULL",
    # Fee lines name their contract and month ("Monthly fee, ... plan, November 2026 (CON-2026-007)");
    # only the first live line of a contract month holds it (an older double bill stays as it was).
    """WITH named AS (
           SELECT l.line_item_id, c.contract_id,
                  to_date(substring(l.description from ', ([A-Z][a-z]+ [0-9]{4})'), 'FMMonth YYYY') AS month,
                  l.live
             FROM invoice_line_items l
             JOIN service_contracts c ON l.description LIKE '%(' || c.contract_number || ')%'
            WHERE l.item_type = 'monthly_fee'),
       first AS (
           SELECT line_item_id, contract_id, month,
                  row_number() OVER (PARTITION BY contract_id, month, live ORDER BY line_item_id) AS n
             FROM named WHERE month IS NOT NULL)
       UPDATE invoice_line_items l SET contract_id = first.contract_id, billing_month = first.month
         FROM first WHERE first.line_item_id = l.line_item_id AND first.n = 1""",
    # Periods of older invoices: the months their lines bill.
    """UPDATE invoices i SET period_start = p.first, period_end = (p.last + interval '1 month - 1 day')::date
         FROM (SELECT invoice_id, min(billing_month) AS first, max(billing_month) AS last
                 FROM invoice_line_items WHERE billing_month IS NOT NULL GROUP BY invoice_id) p
        WHERE p.invoice_id = i.invoice_id""",
]


def _protect(table: str, contact_read: str | None) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY staff_all ON {table} USING (current_user <> '{CONTACT_ROLE}')"
               f" WITH CHECK (current_user <> '{CONTACT_ROLE}')")
    if contact_read:
        op.execute(f"CREATE POLICY contact_read ON {table} FOR SELECT TO {CONTACT_ROLE} USING ({contact_read})")
        op.execute(f"GRANT SELECT ON {table} TO {CONTACT_ROLE}")


def upgrade():
    op.add_column("invoices", sa.Column("period_start", sa.Date(), nullable=True))
    op.add_column("invoices", sa.Column("period_end", sa.Date(), nullable=True))
    op.add_column("invoices", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint("chk_invoice_period", "invoices", "period_end >= period_start")
    op.execute(NOT_OVERPAID)

    op.add_column("invoice_line_items", sa.Column("live", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.add_column("invoice_line_items", sa.Column("contract_id", sa.Integer(), nullable=True))
    op.add_column("invoice_line_items", sa.Column("billing_month", sa.Date(), nullable=True))
    op.add_column("invoice_line_items", sa.Column("included_hours", sa.Numeric(8, 2), server_default=sa.text("0"),
                                                  nullable=False))
    op.create_foreign_key(op.f("invoice_line_items_contract_id_fkey"), "invoice_line_items", "service_contracts",
                          ["contract_id"], ["contract_id"])
    op.create_check_constraint("chk_line_billing_month", "invoice_line_items",
                               "billing_month IS NULL OR extract(day FROM billing_month) = 1")
    op.create_check_constraint("chk_line_included_hours", "invoice_line_items", "included_hours >= 0")
    for statement in BACKFILL:
        op.execute(statement)
    op.execute(LIVE_TRIGGERS)
    op.execute(STATEMENT_TOTALS)

    op.drop_index("idx_line_items_time_entry", table_name="invoice_line_items")
    op.create_index("idx_line_items_time_entry", "invoice_line_items", ["time_entry_id"], unique=True,
                    postgresql_where=sa.text("time_entry_id IS NOT NULL AND live"))
    op.create_index("idx_line_items_fee_month", "invoice_line_items", ["contract_id", "billing_month"], unique=True,
                    postgresql_where=sa.text("item_type = 'monthly_fee' AND live"))
    # What a month's allowance used: live lines of a contract month.
    op.create_index("idx_line_items_contract_month", "invoice_line_items", ["contract_id", "billing_month"],
                    postgresql_where=sa.text("contract_id IS NOT NULL AND live"))

    op.create_table(
        "payments",
        sa.Column("payment_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("payment_date", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=100), server_default="", nullable=False),
        sa.Column("recorded_by_employee_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("chk_payment_amount")),
        sa.CheckConstraint("method IN ('bank_transfer', 'card', 'check', 'cash', 'other')",
                           name=op.f("chk_payment_method")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.invoice_id"], name=op.f("payments_invoice_id_fkey")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.customer_id"], name=op.f("payments_customer_id_fkey")),
        sa.ForeignKeyConstraint(["recorded_by_employee_id"], ["employees.employee_id"],
                                name=op.f("payments_recorded_by_employee_id_fkey")),
        sa.PrimaryKeyConstraint("payment_id", name=op.f("payments_pkey")),
    )
    op.create_index("idx_payments_invoice", "payments", ["invoice_id"])
    op.create_index("idx_payments_date", "payments", ["payment_date", "payment_id"])
    _protect("payments", "customer_id = portal_customer_id() AND EXISTS (SELECT 1 FROM invoices i"
                         " WHERE i.invoice_id = payments.invoice_id AND i.invoice_status <> 'draft')")

    op.create_table(
        "invoice_documents",
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rendered_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.invoice_id"], name=op.f("invoice_documents_invoice_id_fkey")),
        sa.PrimaryKeyConstraint("invoice_id", name=op.f("invoice_documents_pkey")),
    )
    op.execute("CREATE TRIGGER trg_invoice_document_is_final BEFORE UPDATE OR DELETE ON invoice_documents"
               " FOR EACH ROW EXECUTE FUNCTION invoice_document_is_final()")
    _protect("invoice_documents", "EXISTS (SELECT 1 FROM invoices i WHERE i.invoice_id = invoice_documents.invoice_id"
                                  " AND i.customer_id = portal_customer_id() AND i.invoice_status <> 'draft')")

    op.create_table(
        "invoice_runs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="running", nullable=False),
        sa.Column("started_by", sa.String(length=255), nullable=False),
        sa.Column("total", sa.Integer(), server_default="0", nullable=False),
        sa.Column("processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("made", sa.Integer(), server_default="0", nullable=False),
        sa.Column("nothing", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lanes", sa.SmallInteger(), server_default="4", nullable=False),
        sa.Column("lanes_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('running', 'done')", name=op.f("chk_run_status")),
        sa.CheckConstraint("period_end >= period_start", name=op.f("chk_run_period")),
        sa.CheckConstraint("lanes BETWEEN 1 AND 16", name=op.f("chk_run_lanes")),
        sa.PrimaryKeyConstraint("run_id", name=op.f("invoice_runs_pkey")),
    )
    op.create_index("idx_invoice_runs_one_at_a_time", "invoice_runs", ["period_start", "period_end"], unique=True,
                    postgresql_where=sa.text("status = 'running'"))
    op.create_index("idx_invoice_runs_started", "invoice_runs", ["started_at"])
    op.create_table(
        "invoice_run_items",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("outcome IN ('made', 'nothing', 'failed')", name=op.f("chk_run_outcome")),
        sa.ForeignKeyConstraint(["run_id"], ["invoice_runs.run_id"], name=op.f("invoice_run_items_run_id_fkey"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.customer_id"],
                                name=op.f("invoice_run_items_customer_id_fkey")),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.invoice_id"], name=op.f("invoice_run_items_invoice_id_fkey"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("run_id", "customer_id", name=op.f("invoice_run_items_pkey")),
    )
    op.create_index("idx_invoice_run_items_outcome", "invoice_run_items", ["run_id", "outcome", "customer_id"])
    _protect("invoice_run_items", None)  # staff only


def downgrade():
    op.drop_table("invoice_run_items")
    op.drop_table("invoice_runs")
    op.execute(f"REVOKE ALL ON invoice_documents FROM {CONTACT_ROLE}")
    op.drop_table("invoice_documents")
    op.execute(f"REVOKE ALL ON payments FROM {CONTACT_ROLE}")
    op.drop_table("payments")
    op.drop_index("idx_line_items_contract_month", table_name="invoice_line_items")
    op.drop_index("idx_line_items_fee_month", table_name="invoice_line_items")
    op.drop_index("idx_line_items_time_entry", table_name="invoice_line_items")
    op.create_index("idx_line_items_time_entry", "invoice_line_items", ["time_entry_id"], unique=True,
                    postgresql_where=sa.text("time_entry_id IS NOT NULL"))
    op.execute(ROW_TOTALS)
    op.execute("DROP TRIGGER trg_invoice_cancel_frees_lines ON invoices")
    op.execute("DROP TRIGGER trg_invoice_line_live ON invoice_line_items")
    op.execute("DROP FUNCTION invoice_cancel_frees_lines()")
    op.execute("DROP FUNCTION invoice_line_live()")
    op.execute("DROP FUNCTION invoice_document_is_final()")
    op.drop_constraint("chk_line_included_hours", "invoice_line_items", type_="check")
    op.drop_constraint("chk_line_billing_month", "invoice_line_items", type_="check")
    op.drop_constraint(op.f("invoice_line_items_contract_id_fkey"), "invoice_line_items", type_="foreignkey")
    for column in ("included_hours", "billing_month", "contract_id", "live"):
        op.drop_column("invoice_line_items", column)
    op.execute("DROP TRIGGER chk_invoice_not_overpaid ON invoices")
    op.execute("DROP FUNCTION invoice_not_overpaid()")
    op.drop_constraint("chk_invoice_period", "invoices", type_="check")
    for column in ("cancelled_at", "period_end", "period_start"):
        op.drop_column("invoices", column)
