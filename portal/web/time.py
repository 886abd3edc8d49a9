"""Timesheets and time approval (/staff/timesheet, /staff/approvals)."""

from __future__ import annotations

import re

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, request, url_for

from portal.extensions import db
from portal.models import Customer, Employee, Project, ProjectStatus, SupportTicket, TicketStatus, WorkCategory
from portal.services import policy
from portal.services.errors import DomainError, Forbidden, NotFound
from portal.services.timesheets import (
    ApprovalFilters,
    NewTimeEntry,
    decide,
    delete_entry,
    log_time,
    monday_of,
    pending_approvals,
    timesheet_week,
    update_entry,
)
from portal.web.rendering import is_htmx, render, with_toast
from portal.web.security import client_ip, current_principal, require

bp = Blueprint("time", __name__, url_prefix="/staff")


def _now() -> datetime:
    return datetime.now(UTC)


def _week_arg() -> date:
    try:
        return monday_of(date.fromisoformat(request.values.get("week", "")))
    except ValueError:
        return monday_of(_now().date())


def _entry_data(form) -> NewTimeEntry:
    def as_int(name):
        try:
            return int(form.get(name, ""))
        except ValueError:
            return None

    work = form.get("work", "")  # "ticket:12" or "project:3"
    kind, _, number = work.partition(":")
    number = int(number) if re.fullmatch(r"[0-9]{1,9}", number) else None  # "²" is a digit to isdigit(), not to int()
    ticket_id = number if kind == "ticket" else None
    project_id = number if kind == "project" else None
    return NewTimeEntry(work_date=form.get("work_date", ""), hours=form.get("hours", ""),
                        start_time=form.get("start_time", ""), end_time=form.get("end_time", ""),
                        work_category=form.get("work_category", "support"), is_billable=form.get("is_billable") == "1",
                        description=form.get("description", ""), ticket_id=ticket_id or as_int("ticket_id"),
                        project_id=project_id or as_int("project_id"))


def _work_options(q: str = ""):
    """Tickets (open or recently resolved) and active projects to log time on; searchable."""
    tickets = sa.select(SupportTicket.ticket_id, SupportTicket.ticket_number, SupportTicket.title).where(
        SupportTicket.status != TicketStatus.CLOSED).order_by(SupportTicket.last_activity_at.desc()).limit(30)
    projects = sa.select(Project.project_id, Project.project_number, Project.project_name).where(
        Project.project_status.in_([ProjectStatus.PLANNING, ProjectStatus.ACTIVE, ProjectStatus.ON_HOLD])
    ).order_by(Project.project_number).limit(30)
    q = q.strip()[:100]
    if q:
        tickets = tickets.where(sa.or_(SupportTicket.ticket_number.ilike(f"%{q}%"), SupportTicket.title.ilike(f"%{q}%")))
        projects = projects.where(sa.or_(Project.project_number.ilike(f"%{q}%"), Project.project_name.ilike(f"%{q}%")))
    return db.session.execute(tickets).all(), db.session.execute(projects).all()


def _timesheet_page(week: date, *, error: DomainError | None = None, form: dict | None = None, status: int = 200,
                    editing: int | None = None):
    principal = current_principal()
    sheet = timesheet_week(db.session, principal, week)
    tickets, projects = _work_options()
    return render("staff/timesheet.html", block="timesheet", sheet=sheet, tickets=tickets, projects=projects,
                  categories=list(WorkCategory), error=error, form=form or {}, editing=editing,
                  today=_now().date(), prev_week=week - timedelta(days=7), next_week=week + timedelta(days=7),
                  status=status)


@bp.get("/timesheet")
@require(policy.may_use_staff)
def timesheet():
    editing = request.args.get("edit", type=int)
    return _timesheet_page(_week_arg(), editing=editing)


@bp.get("/timesheet/work")
@require(policy.may_use_staff)
def work_picker():
    tickets, projects = _work_options(request.args.get("work_q", ""))
    return render("staff/_work_options.html", tickets=tickets, projects=projects, selected=None)


def _after(week: date, message: str, error: DomainError | None):
    if error is None:
        db.session.commit()
        if not is_htmx():
            return redirect(url_for("time.timesheet", week=week.isoformat()), code=303)
        return with_toast(_timesheet_page(week), message)
    db.session.rollback()
    if isinstance(error, NotFound):
        abort(404)
    if isinstance(error, Forbidden):
        abort(403, description=error.message)
    return with_toast(_timesheet_page(week, error=error, form=request.form.to_dict(), status=422,
                                  editing=request.view_args.get("entry_id")), error.message, "error")


@bp.post("/timesheet/entries")
@require(policy.may_use_staff)
def add_entry():
    week = _week_arg()
    try:
        entry = log_time(db.session, current_principal(), _entry_data(request.form), now=_now(), ip=client_ip())
    except DomainError as error:
        return _after(week, "", error)
    return _after(monday_of(entry.work_date), f"{entry.hours_worked.normalize():f} h logged, waiting for approval.",
                  None)


@bp.post("/timesheet/entries/<int:entry_id>")
@require(policy.may_use_staff)
def update_time_entry(entry_id: int):
    week = _week_arg()
    try:
        update_entry(db.session, current_principal(), entry_id, _entry_data(request.form), now=_now(), ip=client_ip())
    except DomainError as error:
        return _after(week, "", error)
    return _after(week, "Entry saved and sent for approval.", None)


@bp.post("/timesheet/entries/<int:entry_id>/delete")
@require(policy.may_use_staff)
def delete_time_entry(entry_id: int):
    week = _week_arg()
    try:
        delete_entry(db.session, current_principal(), entry_id, ip=client_ip())
    except DomainError as error:
        return _after(week, "", error)
    return _after(week, "Entry deleted.", None)


@bp.get("/approvals")
@require(policy.may_approve_time)
def approvals():
    return _approvals_page()


def _approvals_page(status: int = 200, error: DomainError | None = None):
    principal = current_principal()
    args = request.values

    def as_int(name):
        try:
            return int(args.get(name, "")) or None
        except ValueError:
            return None

    try:
        week = date.fromisoformat(args.get("week", "")) if args.get("week") else None
    except ValueError:
        week = None
    filters = ApprovalFilters(employee_id=as_int("employee_id"), customer_id=as_int("customer_id"), week=week)
    entries, hours, value = pending_approvals(db.session, principal, filters)
    employees = db.session.execute(sa.select(Employee.employee_id, Employee.first_name + " " + Employee.last_name)
                                   .order_by(Employee.first_name)).all()
    customers = db.session.execute(sa.select(Customer.customer_id, Customer.company_name)
                                   .order_by(Customer.company_name)).all()
    return render("staff/approvals.html", block="approvals", entries=entries, hours=hours, value=value,
                  filters=filters, employees=employees, customers=customers, error=error, status=status)


@bp.post("/approvals")
@require(policy.may_approve_time)
def decide_entries():
    ids = []
    for raw in request.form.getlist("entry_ids"):
        try:
            ids.append(int(raw))
        except ValueError:
            continue
    approve = request.form.get("decision") == "approve"
    try:
        count = decide(db.session, current_principal(), ids, approve=approve,
                       reason=request.form.get("rejection_reason", ""), now=_now(), ip=client_ip())
    except DomainError as error:
        db.session.rollback()
        if not is_htmx():
            abort(error.status if error.status in (403, 404, 409) else 422, description=error.message)
        return with_toast(_approvals_page(status=409 if error.status == 409 else 422, error=error), error.message, "error")
    db.session.commit()
    message = f"{count} entr{'y' if count == 1 else 'ies'} {'approved' if approve else 'rejected'}."
    if not is_htmx():
        return redirect(url_for("time.approvals", **{k: v for k, v in request.args.items()}), code=303)
    return with_toast(_approvals_page(), message)
