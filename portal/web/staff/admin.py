"""The admin area (/staff/admin): employees (admins manage, account managers read) and the audit log (admins)."""

from __future__ import annotations

from flask import Blueprint, make_response, request, url_for

from portal.extensions import db
from portal.services import auth, choices, clock, employees, policy
from portal.services.audit_log import NUMBERED, AuditFilters, action_choices, audit_csv, audit_page
from portal.services.errors import Conflict
from portal.services.history import OBJECT_KINDS
from portal.web.errors import error_page
from portal.web.forms import AuditFilterForm, EmployeeFilterForm, EmployeeForm, HandOverForm, InviteForm, parse
from portal.web.rendering import after_change, render
from portal.web.security import current_principal, require

bp = Blueprint("admin", __name__, url_prefix="/staff/admin")


def _with_errors(form, error):
    """`form` with the error's messages beside their fields (and the rest above them)."""
    if error is not None:
        for name, message in error.errors.items():
            if name in form:
                form[name].errors = [message]
        if not error.errors or error.field not in form:
            form.form_errors.append(error.message)
    return form


# --- employees -------------------------------------------------------------------------------

def _employee_list(form: EmployeeFilterForm, filters: employees.EmployeeFilters, error=None):
    listing = employees.employee_list(db.session, current_principal(), filters)
    form.department.options = [(name, name) for name in listing.departments]
    return render("staff/admin/employees.html", block="employee_results", listing=listing, filters=filters,
                  form=_with_errors(form, error), may_manage=policy.may_manage_employees(current_principal()),
                  role_labels=employees.ROLE_LABELS, status_labels=employees.STATUS_LABELS,
                  status=422 if error else 200)


@bp.get("/employees")
@require(policy.may_view_employees)
@error_page(lambda error: _employee_list(EmployeeFilterForm(formdata=request.args), employees.EmployeeFilters(),
                                         error), toast=False)
def list_employees():
    """Everyone who works here, searchable and filtered in the URL (active search for htmx)."""
    form = parse(EmployeeFilterForm, request.args)
    return _employee_list(form, form.filters())


def _new_employee_page(error=None):
    if error is None:
        form = EmployeeForm(formdata=None, data={"employee_number": employees.suggested_number(db.session),
                                                 "capacity_hours_weekly": employees.DEFAULT_CAPACITY,
                                                 "hire_date": clock.today()})
    else:
        form = EmployeeForm(formdata=request.form)
    return render("staff/admin/new_employee.html", form=_with_errors(form, error), status=422 if error else 200)


@bp.route("/employees/new", methods=["GET", "POST"])
@require(policy.may_manage_employees)
@error_page(lambda error: _new_employee_page(error), toast=False)
def new_employee():
    if request.method == "GET":
        return _new_employee_page()
    principal = current_principal()
    form = parse(EmployeeForm, rules=lambda form: employees.employee_errors(db.session, principal, form.details()))
    employee = employees.create_employee(db.session, principal, form.details())
    return after_change(f"{employee.full_name} ({employee.employee_number}) is on the team. "
                        "Invite them next, so they can choose a password.",
                        url_for("admin.show_employee", employee_id=employee.employee_id))


def _employee_page(employee_id: int, *, error=None, scope: str = ""):
    """The employee's page; with `error`, the form of `scope` ("details", "login", "hand_over") shows it."""
    principal = current_principal()
    view = employees.employee_view(db.session, principal, employee_id)
    fresh = error is None or scope != "details" or isinstance(error, Conflict)
    form = EmployeeForm(formdata=None, obj=view.employee) if fresh else EmployeeForm(formdata=request.form)
    if not fresh:
        _with_errors(form, error)
    hand_over = HandOverForm(formdata=request.form if scope == "hand_over" else None)
    if scope == "hand_over":
        _with_errors(hand_over, error)
    others = lambda pairs: [(i, name) for i, name in pairs if i != employee_id]  # noqa: E731
    hand_over.tickets_to.options = others(choices.ticket_workers(db.session))
    hand_over.projects_to.options = others(choices.project_managers(db.session))
    return render("staff/admin/employee.html", view=view, form=form, hand_over=hand_over, invite=InviteForm(),
                  error=error, scope=scope, may_manage=policy.may_manage_employees(principal),
                  role_labels=employees.ROLE_LABELS, status_labels=employees.STATUS_LABELS,
                  status=(409 if isinstance(error, Conflict) else 422) if error else 200)


@bp.get("/employees/<int:employee_id>")
@require(policy.may_view_employees)
def show_employee(employee_id: int):
    return _employee_page(employee_id)


@bp.post("/employees/<int:employee_id>")
@require(policy.may_manage_employees)
@error_page(lambda error, employee_id: _employee_page(employee_id, error=error, scope="details"), toast=False)
def update_employee(employee_id: int):
    principal = current_principal()
    form = parse(EmployeeForm, rules=lambda form: employees.employee_errors(db.session, principal, form.details(),
                                                                            employee_id))
    employee = employees.update_employee(db.session, principal, employee_id, form.details(),
                                         expected_updated_at=form.updated_at.data)
    message = f"{employee.full_name} is saved."
    if employee.employment_status.value != "active":
        message = (f"{employee.full_name} is {employee.employment_status.value}: signed out everywhere and unable "
                   "to sign in. Hand their open work over below.")
    return after_change(message, url_for("admin.show_employee", employee_id=employee_id))


@bp.post("/employees/<int:employee_id>/invite")
@require(policy.may_manage_employees)
@error_page(lambda error, employee_id: _employee_page(employee_id, error=error, scope="login"))
def invite_employee(employee_id: int):
    account = auth.invite(db.session, current_principal(), employee_id=employee_id)
    return after_change(f"Invitation sent to {account.email}. The link works once, for 24 hours.",
                        url_for("admin.show_employee", employee_id=employee_id))


@bp.post("/employees/<int:employee_id>/hand-over")
@require(policy.may_manage_employees)
@error_page(lambda error, employee_id: _employee_page(employee_id, error=error, scope="hand_over"), toast=False)
def hand_over_work(employee_id: int):
    """Every open ticket to one colleague and every open project to another, in one step."""
    form = parse(HandOverForm)
    done = employees.hand_over_work(db.session, current_principal(), employee_id,
                                    tickets_to=form.tickets_to.data, projects_to=form.projects_to.data)
    parts = []
    if done.tickets:
        parts.append(f"{done.tickets} open ticket{'s' if done.tickets != 1 else ''}")
    if done.projects:
        parts.append(f"{done.projects} open project{'s' if done.projects != 1 else ''}"
                     + (f" with {done.approvals} time entr{'ies' if done.approvals != 1 else 'y'} awaiting approval"
                        if done.approvals else ""))
    return after_change("Handed over " + " and ".join(parts) + ".",
                        url_for("admin.show_employee", employee_id=employee_id))


# --- the audit log ---------------------------------------------------------------------------

def _audit_form(form: AuditFilterForm, page) -> AuditFilterForm:
    people = [(f"employee:{i}", name) for i, name in (page.employees if page else choices.employees(db.session))]
    kinds = [("contact", "Any contact"), ("api_client", "Any API client"), ("system", "TechServ Portal (scheduled work)")]
    current = form.actor.data or ""
    if page and page.actor_label and current and current not in dict(people + kinds):
        kinds.insert(0, (current, page.actor_label))
    form.actor.options = [("People", people), ("Others", kinds)]
    if not form.object.data and form.row_id.data and page and page.subject:
        # A history link names its row by id: the field shows what people call it, and keeps it when filters change.
        form.object.data = page.subject.label if page.subject.table in NUMBERED.values() else str(form.row_id.data)
    form.table.options = list(OBJECT_KINDS.items())
    form.action.options = action_choices(form.action.data or "")
    return form


def _audit_page(form: AuditFilterForm, filters: AuditFilters, error=None):
    page = None if error else audit_page(db.session, current_principal(), filters)
    return render("staff/admin/audit.html", block="audit_results", page=page, filters=filters,
                  form=_with_errors(_audit_form(form, page), error), status=422 if error else 200)


@bp.get("/audit")
@require(policy.may_read_audit_log)
@error_page(lambda error: _audit_page(AuditFilterForm(formdata=request.args), AuditFilters(), error), toast=False)
def audit_log():
    """Every recorded change, newest first, filtered in the URL; 50 a page by keyset."""
    form = parse(AuditFilterForm, request.args)
    return _audit_page(form, form.filters())


@bp.get("/audit.csv")
@require(policy.may_read_audit_log)
@error_page(lambda error: _audit_page(AuditFilterForm(formdata=request.args), AuditFilters(), error), toast=False)
def export_audit_log():
    """The filtered view as CSV (every matching event, newest first, up to audit_log.CSV_LIMIT)."""
    form = parse(AuditFilterForm, request.args)
    text, _ = audit_csv(db.session, current_principal(), form.filters())
    response = make_response(text)
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    stamp = clock.now().astimezone(clock.business_zone()).strftime("%Y%m%d-%H%M")
    response.headers["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response
