"""Mail in for staff: the unmatched mail list (/staff/mail/unmatched, account managers and admins)
and the holiday calendar (/staff/admin/holidays, admins)."""

from __future__ import annotations

from flask import Blueprint, request, url_for

from portal.extensions import db
from portal.models import SupportTicket
from portal.services import choices, clock, holiday_calendar, mail_in, policy
from portal.web.errors import error_page
from portal.web.files import attachment_storage
from portal.web.forms import (
    AttachMailForm,
    HolidayForm,
    HolidayYearForm,
    PrefillHolidaysForm,
    UnmatchedPageForm,
    parse,
)
from portal.web.rendering import after_change, render
from portal.web.security import current_principal, require

bp = Blueprint("mail_in", __name__, url_prefix="/staff")


def _with_error(form, error):
    if error is not None:
        for name, message in (error.errors or {error.field: error.message}).items():
            if name and name in form:
                form[name].errors = [message]
            else:
                form.form_errors.append(message)
    return form


# --- unmatched mail ------------------------------------------------------------------------------

def _unmatched_page(*, error=None, failed_id: int | None = None, before: int | None = None):
    rows = mail_in.unmatched(db.session, current_principal(), before=before)
    more = len(rows) > mail_in.PAGE_SIZE
    rows = rows[:mail_in.PAGE_SIZE]
    customers = choices.customers(db.session)
    forms = {}
    for row in rows:
        failed = error is not None and row.inbound_mail_id == failed_id
        form = AttachMailForm(formdata=request.form if failed else None, data={"customer_id": row.customer_id})
        if failed:
            for field in form:
                field.errors = []
        form.customer_id.options = customers
        forms[row.inbound_mail_id] = _with_error(form, error) if failed else form
    return render("staff/unmatched_mail.html", rows=rows, forms=forms,
                  next_before=rows[-1].inbound_mail_id if more else None, first_page=before is None,
                  status=422 if error else 200)


@bp.get("/mail/unmatched")
@require(policy.may_handle_unmatched_mail)
@error_page(lambda error: _unmatched_page(error=error))
def unmatched_mail():
    """Mail from addresses no contact has, newest first: attach each to a customer or discard it."""
    form = parse(UnmatchedPageForm, request.args)
    return _unmatched_page(before=form.before.data)


@bp.post("/mail/unmatched/<int:mail_id>/attach")
@require(policy.may_handle_unmatched_mail)
@error_page(lambda error, mail_id: _unmatched_page(error=error, failed_id=mail_id), toast=False)
def attach_mail(mail_id: int):
    form = parse(AttachMailForm)
    record = mail_in.attach_to_customer(db.session, attachment_storage(), current_principal(), mail_id, form.customer_id.data,
                                        first_name=form.first_name.data or "", last_name=form.last_name.data or "")
    number = db.session.get(SupportTicket, record.ticket_id).ticket_number
    return after_change(f"The mail from {record.from_address} is now {number}, a ticket of its customer; "
                        "the sender is their contact and was sent the ticket number.",
                        url_for("mail_in.unmatched_mail"))


@bp.post("/mail/unmatched/<int:mail_id>/discard")
@require(policy.may_handle_unmatched_mail)
@error_page(lambda error, mail_id: _unmatched_page(error=error, failed_id=mail_id))
def discard_mail(mail_id: int):
    record = mail_in.discard(db.session, current_principal(), mail_id)
    return after_change(f"The mail from {record.from_address} was discarded (nobody was answered).",
                        url_for("mail_in.unmatched_mail"))


# --- holidays ------------------------------------------------------------------------------------

def _holidays_page(year: int | None = None, *, error=None, form_name: str = ""):
    year = year or clock.today().year
    page = holiday_calendar.year_page(db.session, current_principal(), year)
    add = HolidayForm(formdata=request.form if error is not None and form_name == "add" else None)
    prefill = PrefillHolidaysForm(formdata=request.form if error is not None and form_name == "prefill" else None,
                                  data={"year": year, "country": "US"})
    prefill.country.options = page.countries
    if error is not None:
        _with_error(add if form_name == "add" else prefill, error)
    return render("staff/admin/holidays.html", page=page, add=add, prefill=prefill,
                  status=422 if error else 200)


def _year_arg() -> int | None:
    return parse(HolidayYearForm, request.args).year.data


@bp.get("/admin/holidays")
@require(policy.may_keep_holidays)
@error_page(lambda error: _holidays_page(error=error))
def holidays():
    """The holiday calendar of a year (?year=2027), which business-hours SLAs skip."""
    return _holidays_page(_year_arg())


@bp.post("/admin/holidays")
@require(policy.may_keep_holidays)
@error_page(lambda error: _holidays_page(error=error, form_name="add"), toast=False)
def add_holiday():
    form = parse(HolidayForm, rules=lambda form: holiday_calendar.holiday_errors(form.day.data, form.name.data))
    holiday = holiday_calendar.add_holiday(db.session, current_principal(), form.day.data, form.name.data)
    return after_change(f"{holiday.name} ({holiday.day.isoformat()}) is a holiday; open tickets' deadlines moved.",
                        url_for("mail_in.holidays", year=holiday.day.year))


@bp.post("/admin/holidays/prefill")
@require(policy.may_keep_holidays)
@error_page(lambda error: _holidays_page(error=error, form_name="prefill"), toast=False)
def prefill_holidays():
    form = parse(PrefillHolidaysForm)
    added = holiday_calendar.prefill(db.session, current_principal(), form.year.data, form.country.data)
    return after_change(f"{len(added)} public holiday{'' if len(added) == 1 else 's'} added for {form.year.data}"
                        " (days already in the calendar were kept).", url_for("mail_in.holidays", year=form.year.data))


@bp.post("/admin/holidays/<int:holiday_id>/delete")
@require(policy.may_keep_holidays)
@error_page(lambda error, holiday_id: _holidays_page(error=error))
def delete_holiday(holiday_id: int):
    holiday = holiday_calendar.remove_holiday(db.session, current_principal(), holiday_id)
    return after_change(f"{holiday.day.isoformat()} is a working day again.",
                        url_for("mail_in.holidays", year=holiday.day.year))
