"""Row-level security for contacts: their transactions run as `portal_contact` with their customer
and their own contact id set.

`apply_contact_scope` runs inside the current transaction (SET LOCAL lasts until it ends); the
web layer calls it again at the start of every later transaction of the same request.
"""

from __future__ import annotations

import sqlalchemy as sa

CONTACT_ROLE = "portal_contact"


def apply_contact_scope(connection_or_session, customer_id: int, contact_id: int) -> None:
    # One statement: set_config('role', ..., true) is SET LOCAL ROLE (docs/performance.md, issue 14).
    connection_or_session.execute(
        sa.text(f"SELECT set_config('role', '{CONTACT_ROLE}', true), set_config('portal.customer_id', :customer_id, true),"
                " set_config('portal.contact_id', :contact_id, true)"),
        {"customer_id": str(int(customer_id)), "contact_id": str(int(contact_id))},
    )


def clear_contact_scope(connection_or_session) -> None:
    connection_or_session.execute(sa.text(
        "SELECT set_config('role', 'none', true), set_config('portal.customer_id', '', true),"
        " set_config('portal.contact_id', '', true)"))
