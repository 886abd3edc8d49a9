"""Reading the audit log: every recorded change, filtered, newest first, 50 at a time; and its CSV.

The log only grows (a trigger refuses UPDATE, DELETE and TRUNCATE), and this module only reads it.
Pages are cut by keyset on (occurred_at, event_id), never by OFFSET, so page 10,000 costs what
page 1 does; each filter has an index ending in that order (migration 0014, measured on three
million events in docs/performance.md). A page costs three queries whatever it shows: the
people for the actor filter, the events, and the names of everything they mention
(history.Labels). Words come from services/history.py, the same as the ticket page's history.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from portal.models import ActorType, AuditEvent
from portal.services import choices, clock, policy
from portal.services.errors import Forbidden, Invalid
from portal.services.history import (
    ACTION_LABELS,
    ACTOR_KINDS,
    FINDABLE,
    OBJECT_KINDS,
    ROW_KEYS,
    Labels,
    action_label,
    describe,
    find_condition,
    who,
)

PAGE_SIZE = 50
CSV_LIMIT = 50_000  # events in one export; narrow the filters for more
CSV_CHUNK = 2_000
LARGEST_ID = 2**63 - 1
# A human-facing number names its kind: TKT-2026-000123, INV-2026-00042, PRJ-2026-007, CON-2026-001.
NUMBERED = {"TKT": "support_tickets", "INV": "invoices", "PRJ": "projects", "CON": "service_contracts"}
NUMBER = re.compile(r"(TKT|INV|PRJ|CON)-[A-Z0-9-]{1,20}", re.IGNORECASE)
ACTOR = re.compile(r"(employee|contact|api_client|system)(?::([0-9]{1,18}))?")


@dataclass(frozen=True)
class AuditFilters:
    """What the audit log page shows; every field lives in the URL."""

    actor: str = ""  # "employee:5", "contact:12", "api_client:3"; or a kind: "contact", "api_client", "system"
    table: str = ""  # a kind of object: a key of history.OBJECT_KINDS
    object: str = ""  # a number (TKT-2026-000123, INV-..., EMP001), an email or company name, or an id with `table`
    action: str = ""  # "ticket.assigned", ...
    date_from: date | None = None
    date_to: date | None = None
    before: int | None = None  # keyset: events older than this event
    after: int | None = None  # keyset: events newer than this event

    def as_args(self, **override) -> dict:
        """The filters as URL arguments (only those set), with `override` applied; cursors dropped unless given."""
        args = {"actor": self.actor, "table": self.table, "object": self.object, "action": self.action,
                "date_from": self.date_from.isoformat() if self.date_from else "",
                "date_to": self.date_to.isoformat() if self.date_to else ""}
        args.update(override)
        return {k: v for k, v in args.items() if v not in ("", None)}

    @property
    def any(self) -> bool:
        return any(self.as_args().values())


@dataclass(frozen=True)
class AuditRow:
    event_id: int
    at: datetime
    who: str
    actor_kind: str  # "Employee", "Contact", "API client", "System"
    actor: str  # the actor filter that shows this actor's events ("employee:5"), "" for the system
    action: str
    action_label: str
    table: str | None
    row_id: int | None
    object_kind: str | None  # "Ticket"
    object_label: str | None  # "TKT-2026-000123"
    object_detail: str | None  # "Printer jams"
    what: str
    ip_address: str | None


@dataclass(frozen=True)
class Subject:
    """The object the page is filtered on: "Ticket TKT-2026-000123 · Printer jams"."""

    table: str
    row_id: int | None  # None: no such row (a number that names nothing)
    kind: str
    label: str
    detail: str | None


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    filters: AuditFilters
    newer: int | None  # `after` cursor of the page before this one (newer events), None on the first page
    older: int | None  # `before` cursor of the next page (older events), None on the last page
    subject: Subject | None  # the object filtered on
    actor_label: str | None  # the actor filtered on, in words
    employees: list[tuple[int, str]]  # the actor filter's choices


def _actor(text: str) -> tuple[str, int | None] | None:
    if not text:
        return None
    match = ACTOR.fullmatch(text)
    if not match or (match.group(1) == "system" and match.group(2)):
        raise Invalid("Choose who acted from the list.", "actor")
    return match.group(1), int(match.group(2)) if match.group(2) else None


def _target(filters: AuditFilters) -> tuple[str | None, int | None, str | None]:
    """(table, row id, number or name) of the object filter; the kind alone when no object is given.

    :raises Invalid: an id without its kind, a kind the log does not know, or text that names nothing.
    """
    table = filters.table or None
    if table is not None and table not in OBJECT_KINDS:
        raise Invalid("Choose the kind of object from the list.", "table")
    text = filters.object.strip()
    if not text:
        return table, None, None
    if NUMBER.fullmatch(text):
        return NUMBERED[text[:3].upper()], None, text.upper()
    if text.isdigit():
        if table is None:
            raise Invalid("An id alone names nothing: choose its kind, or type a number like TKT-2026-000123.",
                          "object")
        row_id = int(text)
        if not 0 < row_id <= LARGEST_ID:
            raise Invalid("No object has that id.", "object")
        return table, row_id, None
    if table in FINDABLE and table not in NUMBERED.values() and len(text) <= 255:
        return table, None, text  # an employee number or email, a contact's or login's email, a company name
    if table in NUMBERED.values():
        example = {"support_tickets": "TKT-2026-000123", "invoices": "INV-2026-00042", "projects": "PRJ-2026-007",
                   "service_contracts": "CON-2026-001"}[table]
        raise Invalid(f"Type the {OBJECT_KINDS[table].lower()}'s number, like {example}, or its id.", "object")
    raise Invalid("Type a number like TKT-2026-000123, INV-2026-00042, PRJ-2026-007 or EMP001, an email or a "
                  "company name (with its kind), or choose a kind and type its id.", "object")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), clock.business_zone())


def _conditions(filters: AuditFilters) -> list:
    """The WHERE clause of the filters (not the cursor). :raises Invalid: a filter names nothing sensible."""
    conditions = []
    actor = _actor(filters.actor)
    if actor is not None:
        kind, actor_id = actor
        conditions.append(AuditEvent.actor_type == ActorType(kind))
        if actor_id is not None:
            conditions.append(AuditEvent.actor_id == actor_id)
        elif kind == "system":
            conditions.append(AuditEvent.actor_id.is_(None))  # the system has no id: the actor index serves it
    table, row_id, number = _target(filters)
    if table is not None:
        conditions.append(AuditEvent.table_name == table)
    if row_id is not None:
        conditions.append(AuditEvent.row_id == row_id)
    elif number is not None:
        key = ROW_KEYS[table]
        conditions.append(AuditEvent.row_id == sa.select(key).where(find_condition(table, number))
                          .limit(1).scalar_subquery())
    if filters.action:
        if len(filters.action) > 100:
            raise Invalid("Choose the action from the list.", "action")
        conditions.append(AuditEvent.action == filters.action)
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        raise Invalid("The end of the period cannot be before its start.", "date_to")
    if filters.date_from:
        conditions.append(AuditEvent.occurred_at >= _day_start(filters.date_from))
    if filters.date_to:
        conditions.append(AuditEvent.occurred_at < _day_start(filters.date_to + timedelta(days=1)))
    return conditions


_ORDER = (AuditEvent.occurred_at, AuditEvent.event_id)


def _cursor(op: str, event_id: int):
    """Rows before (older than, `<`) or after (`>`) an event, by keyset on (occurred_at, event_id): a row
    comparison the indexes ending in (occurred_at, event_id) start their scan from."""
    return sa.text(f"(audit_events.occurred_at, audit_events.event_id) {op} "
                   "(SELECT c.occurred_at, c.event_id FROM audit_events AS c WHERE c.event_id = :cursor)"
                   ).bindparams(cursor=event_id)


def _columns():
    return sa.select(AuditEvent.event_id, AuditEvent.occurred_at, AuditEvent.actor_type, AuditEvent.actor_id,
                     AuditEvent.actor_label, AuditEvent.action, AuditEvent.table_name, AuditEvent.row_id,
                     AuditEvent.changes, sa.func.host(AuditEvent.ip_address).label("ip_address"))


def _rows(events, labels: Labels) -> list[AuditRow]:
    rows = []
    for event in events:
        found = labels.objects.get((event.table_name, event.row_id)) if event.row_id is not None else None
        kind = ActorType(event.actor_type).value
        rows.append(AuditRow(
            event_id=event.event_id, at=event.occurred_at, who=who(event), actor_kind=ACTOR_KINDS[kind],
            actor=f"{kind}:{event.actor_id}" if event.actor_id is not None else ("system" if kind == "system" else kind),
            action=event.action, action_label=action_label(event.action), table=event.table_name, row_id=event.row_id,
            object_kind=OBJECT_KINDS.get(event.table_name) if event.table_name else None,
            object_label=found.label if found else (f"#{event.row_id}" if event.row_id is not None else None),
            object_detail=found.detail if found else None, what=describe(event, labels),
            ip_address=event.ip_address))
    return rows


def _check(principal: policy.Principal) -> None:
    if not policy.may_read_audit_log(principal):
        raise Forbidden("Only administrators read the audit log.")


def audit_page(session, principal: policy.Principal, filters: AuditFilters) -> AuditPage:
    """One page of events matching the filters, newest first; three queries whatever the page shows.

    :raises Forbidden: only admins read the audit log.
    :raises Invalid: a filter names nothing sensible (the field is named).
    """
    _check(principal)
    conditions = _conditions(filters)
    employees = choices.employees(session)
    query = _columns().where(*conditions)
    if filters.after is not None:
        query = query.where(_cursor(">", filters.after)).order_by(*_ORDER)
    else:
        if filters.before is not None:
            query = query.where(_cursor("<", filters.before))
        query = query.order_by(*(column.desc() for column in _ORDER))
    events = session.execute(query.limit(PAGE_SIZE + 1)).all()
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    if filters.after is not None:
        events.reverse()

    table, row_id, number = _target(filters)
    actor = _actor(filters.actor)
    also = {table: {row_id}} if row_id is not None else {}
    if actor and actor[0] == "contact" and actor[1] is not None:
        also.setdefault("contacts", set()).add(actor[1])
    labels = Labels.load(session, events, also=also, find=(table, number) if number else None, always=True)
    rows = _rows(events, labels)

    subject = None
    if row_id is not None or number is not None:
        key = (table, row_id) if row_id is not None else labels.found
        found = labels.objects.get(key) if key else None
        subject = Subject(table, key[1] if found else None, OBJECT_KINDS[table],
                          found.label if found else (number or f"#{row_id}"), found.detail if found else None)
    actor_label = None
    if actor is not None:
        kind, actor_id = actor
        if actor_id is None:
            actor_label = {"contact": "Any contact", "api_client": "Any API client", "system": "TechServ Portal",
                           "employee": "Any employee"}[kind]
        elif kind == "employee":
            actor_label = dict(employees).get(actor_id, f"Employee #{actor_id}")
        elif kind == "contact":
            actor_label = labels.contacts.get(actor_id, f"Contact #{actor_id}")
        else:
            actor_label = next((r.who for r in rows if r.actor == filters.actor), f"API client #{actor_id}")

    if filters.after is not None:
        newer = rows[0].event_id if more and rows else None
        older = rows[-1].event_id if rows else None
    else:
        newer = rows[0].event_id if filters.before is not None and rows else None
        older = rows[-1].event_id if more else None
    return AuditPage(rows, filters, newer, older, subject, actor_label, employees)


def action_choices(current: str = "") -> list[tuple[str, str]]:
    """(action, label) of every action the portal records, by object; with `current` if it is another."""
    options = sorted(ACTION_LABELS.items(), key=lambda item: (item[0].split(".")[0], item[1]))
    if current and current not in ACTION_LABELS:
        options.insert(0, (current, action_label(current)))
    return options


# --- the CSV export --------------------------------------------------------------------------

CSV_HEADER = ["When", "Who", "Kind of actor", "Actor id", "Action", "Kind of object", "Object", "Object id",
              "What changed", "From address"]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell) -> str:
    """A cell a spreadsheet shows as text, never runs: one starting = + - @ (or a tab or CR) gets a ' first
    (OWASP's advice against CSV formula injection)."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def audit_csv(session, principal: policy.Principal, filters: AuditFilters) -> tuple[str, int]:
    """(the CSV text, how many events) of every event matching the filters, newest first, at most CSV_LIMIT.

    Cursors are ignored: the export is the whole filtered view, not one page of it.
    :raises Forbidden: only admins read the audit log. :raises Invalid: a filter names nothing sensible.
    """
    _check(principal)
    filters = replace(filters, before=None, after=None)
    query = (_columns().where(*_conditions(filters)).order_by(*(column.desc() for column in _ORDER))
             .limit(CSV_LIMIT).execution_options(yield_per=CSV_CHUNK))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    zone = clock.business_zone()
    count = 0
    for chunk in session.execute(query).partitions():
        for row in _rows(chunk, Labels.load(session, chunk)):
            writer.writerow([neutralise(value) for value in (
                row.at.astimezone(zone).isoformat(timespec="seconds"), row.who, row.actor_kind,
                row.actor.partition(":")[2], row.action_label, row.object_kind or "",
                row.object_label or "", row.row_id or "", row.what, row.ip_address or "")])
            count += 1
    return out.getvalue(), count
