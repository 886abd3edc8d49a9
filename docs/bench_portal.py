"""Time the contact's ticket list and home page under the contact's row-level security."""
from datetime import UTC, datetime
import statistics, sys, time
import sqlalchemy as sa
from sqlalchemy import event
from portal import create_app
from portal.extensions import db
from portal.models import Account, Contact, SupportTicket
from portal.services import auth
from portal.services.dashboards import portal_summary
from portal.services.tenancy import apply_contact_scope
from portal.services.tickets import PortalTicketFilters, contact_tickets

app = create_app()
with app.app_context():
    customer_id, n = db.session.execute(sa.select(SupportTicket.customer_id, sa.func.count())
                                        .group_by(SupportTicket.customer_id).order_by(sa.func.count().desc())).first()
    contact = db.session.scalar(sa.select(Contact).where(Contact.customer_id == customer_id,
                                                         Contact.is_primary_contact.is_(True)))
    account_id = db.session.scalar(sa.select(Account.account_id).where(Account.contact_id == contact.contact_id))
    me = auth.principal_for(db.session, account_id)
    db.session.rollback()
    print(f"customer {customer_id}: {n} tickets; primary contact {contact.email}")
    sent = []
    event.listen(db.engine, "before_cursor_execute",
                 lambda c, cur, sql, params, ctx, many: sent.append((sql, params)))
    views = {
        "list: default (open)": lambda: contact_tickets(db.session, me, PortalTicketFilters(), now=datetime.now(UTC)),
        "list: all statuses, page 200": lambda: contact_tickets(db.session, me, PortalTicketFilters(status="all", page=200), now=datetime.now(UTC)),
        "list: search 'print'": lambda: contact_tickets(db.session, me, PortalTicketFilters(status="all", q="print"), now=datetime.now(UTC)),
        "list: search 'vpn conn'": lambda: contact_tickets(db.session, me, PortalTicketFilters(status="all", q="vpn conn"), now=datetime.now(UTC)),
        "list: one submitter, closed": lambda: contact_tickets(db.session, me, PortalTicketFilters(status="closed", submitter=contact.contact_id), now=datetime.now(UTC)),
        "home: summary": lambda: portal_summary(db.session, me),
    }
    explain = "--explain" in sys.argv
    for name, view in views.items():
        times = []
        for _ in range(13):
            apply_contact_scope(db.session, me.customer_id, me.contact_id)
            sent.clear()
            t = time.perf_counter()
            view()
            times.append((time.perf_counter() - t) * 1000)
            db.session.rollback()
        print(f"{name}: median {statistics.median(times[3:]):.1f} ms, max {max(times[3:]):.1f} ms, {len(sent)} queries")
        if explain:
            with db.engine.connect() as conn:
                conn.exec_driver_sql("SET ROLE portal_contact")
                conn.exec_driver_sql(f"SELECT set_config('portal.customer_id', '{me.customer_id}', false), set_config('portal.contact_id', '{me.contact_id}', false)")
                for sql, params in [(q, p) for q, p in sent if not q.startswith(("SET", "SELECT set_config", "RESET"))]:
                    print("\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)))
                    print()
                conn.rollback()
