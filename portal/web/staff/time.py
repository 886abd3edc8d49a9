"""Timesheets and time approval (/staff/timesheet, /staff/approvals)."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, request, url_for

from portal.extensions import db
from portal.models import WorkCategory
from portal.services import choices, clock, policy
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
from portal.web.errors import error_page
from portal.web.forms import DecideEntriesForm, TimeEntryForm, page_form, parse
from portal.web.rendering import after_change, render
from portal.web.security import current_principal, require

bp = Blueprint("time", __name__, url_prefix="/staff")


def _week_arg() -> date:
    try:
        return monday_of(date.fromisoformat(request.values.get("week", "")))
    except ValueError:
        return monday_of(clock.today())


def _entry(form: TimeEntryForm) -> NewTimeEntry:
    ticket_id, project_id = form.work_ids()
    return NewTimeEntry(work_date=form.work_date.data, hours=form.hours.data, start_time=form.start_time.data,
                        end_time=form.end_time.data, work_category=form.work_category.data or WorkCategory.SUPPORT,
                        is_billable=form.is_billable.data, description=form.description.data,
                        ticket_id=ticket_id, project_id=project_id)


def _timesheet_page(week: date, *, error=None, editing: int | None = None):
    principal = current_principal()
    tickets, projects = choices.work_to_log(db.session)
    sheet = timesheet_week(db.session, principal, week)
    today = clock.today()
    add_form = page_form(TimeEntryForm, None if editing else error, data={"work_date": today})
    edited = next((e for e in sheet.entries if e.entry_id == editing), None)
    edit_form = page_form(TimeEntryForm, error, data={
        "work_date": edited.work_date, "hours": edited.hours_worked, "start_time": edited.start_time,
        "end_time": edited.end_time, "work_category": edited.work_category, "is_billable": edited.is_billable,
        "description": edited.description}) if edited is not None else None
    return render("staff/timesheet.html", block="timesheet", sheet=sheet, tickets=tickets, projects=projects,
                  error=error, form=request.form.to_dict() if error else {}, editing=editing, today=today,
                  add_form=add_form, edit_form=edit_form,
                  prev_week=week - timedelta(days=7), next_week=week + timedelta(days=7))


def _timesheet_error(error, entry_id: int | None = None):
    return _timesheet_page(_week_arg(), error=error, editing=entry_id)


def _timesheet_changed(week: date, message: str):
    return after_change(message, url_for("time.timesheet", week=week.isoformat()), lambda: _timesheet_page(week))


@bp.get("/timesheet")
@require(policy.may_use_staff)
def timesheet():
    return _timesheet_page(_week_arg(), editing=request.args.get("edit", type=int))


@bp.get("/timesheet/work")
@require(policy.may_use_staff)
def work_picker():
    tickets, projects = choices.work_to_log(db.session, request.args.get("work_q", ""))
    return render("staff/_work_options.html", tickets=tickets, projects=projects, selected=None)


@bp.post("/timesheet/entries")
@require(policy.may_use_staff)
@error_page(_timesheet_error)
def add_entry():
    entry = log_time(db.session, current_principal(), _entry(parse(TimeEntryForm)))
    return _timesheet_changed(monday_of(entry.work_date),
                              f"{entry.hours_worked.normalize():f} h logged, waiting for approval.")


@bp.post("/timesheet/entries/<int:entry_id>")
@require(policy.may_use_staff)
@error_page(_timesheet_error)
def update_time_entry(entry_id: int):
    update_entry(db.session, current_principal(), entry_id, _entry(parse(TimeEntryForm)))
    return _timesheet_changed(_week_arg(), "Entry saved and sent for approval.")


@bp.post("/timesheet/entries/<int:entry_id>/delete")
@require(policy.may_use_staff)
@error_page(_timesheet_error)
def delete_time_entry(entry_id: int):
    delete_entry(db.session, current_principal(), entry_id)
    return _timesheet_changed(_week_arg(), "Entry deleted.")


def _approvals_page(error=None):
    principal = current_principal()
    args = request.values

    def as_int(name):
        value = args.get(name, type=int)
        return value if value and 0 < value < 2**31 else None

    try:
        week = date.fromisoformat(args.get("week", "")) if args.get("week") else None
    except ValueError:
        week = None
    filters = ApprovalFilters(employee_id=as_int("employee_id"), customer_id=as_int("customer_id"), week=week)
    listing = pending_approvals(db.session, principal, filters, page=args.get("page", 1, type=int) or 1)
    customer_q = args.get("customer_q", "")
    return render("staff/approvals.html", block="approvals", listing=listing, entries=listing.entries,
                  filters=filters, employees=choices.employees(db.session), customer_q=customer_q.strip()[:100],
                  customer_filter=choices.customer_filter(db.session, customer_q, selected=filters.customer_id),
                  error=error)


@bp.get("/approvals")
@require(policy.may_approve_time)
def approvals():
    return _approvals_page()


@bp.post("/approvals")
@require(policy.may_approve_time)
@error_page(lambda error: _approvals_page(error))
def decide_entries():
    form = parse(DecideEntriesForm)
    approve = form.decision.data == "approve"
    count = decide(db.session, current_principal(), form.entry_ids.data, approve=approve,
                   reason=form.rejection_reason.data)
    message = f"{count} entr{'y' if count == 1 else 'ies'} {'approved' if approve else 'rejected'}."
    return after_change(message, url_for("time.approvals", **request.args), _approvals_page)
