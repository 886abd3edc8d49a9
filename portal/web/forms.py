"""Forms: every page parses its input here, into the typed values services take.

WTForms checks shape only: is this a date, a number, one of the choices, an id? The rules (what is
required, what range, what combination) live in portal/services and answer the same to the pages
and the API. `parse(FormClass)` validates the request's form and raises Invalid with a message per
field when its shape is wrong, which the error handler shows beside each field, like a service's.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from datetime import datetime
from decimal import Decimal, InvalidOperation

from flask import request
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    Field,
    HiddenField,
    IntegerField,
    PasswordField,
    StringField,
    TimeField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, ValidationError
from wtforms.widgets import HiddenInput, TextArea, TextInput, html_params

from portal.models import (
    CommunicationPreference,
    EmployeeRole,
    EmploymentStatus,
    PhaseStatus,
    ProjectStatus,
    TicketCategory,
    TicketPriority,
    TicketStatus,
    WorkCategory,
)
from portal.services import employees
from portal.services.errors import Invalid
from portal.services.numbers import plain_number
from portal.services.people import COMMUNICATION_CHOICES

LARGEST_ID = 2**31 - 1


# --- fields that parse, with messages a person understands -----------------------------------

def _strip(value):
    return value.strip() if isinstance(value, str) else value


class Text(StringField):
    """Text, stripped; empty is "" (the service says whether it is required)."""

    def __init__(self, label=None, **kwargs):
        super().__init__(label, filters=[_strip], **kwargs)

    def process_formdata(self, valuelist):
        self.data = valuelist[0] if valuelist else ""


class _EmptyIsNone:
    """Empty is None; what does not parse says `message`, beside the field."""

    message = ""

    def process_formdata(self, valuelist):
        raw = (valuelist[0] if valuelist else "").strip()
        self.data = None
        if raw:
            try:
                super().process_formdata([raw])
            except ValueError:
                raise ValueError(self.message) from None


class Day(_EmptyIsNone, DateField):
    """A date as YYYY-MM-DD, or None when left empty."""

    def __init__(self, label=None, message="Enter the date as YYYY-MM-DD.", **kwargs):
        self.message = message
        super().__init__(label, **kwargs)


class ClockTime(_EmptyIsNone, TimeField):
    """A time of day as HH:MM, or None when left empty."""

    message = "Enter the time as HH:MM."


WEEKDAYS = [(1, "Mon"), (2, "Tue"), (3, "Wed"), (4, "Thu"), (5, "Fri"), (6, "Sat"), (7, "Sun")]
WEEKDAY_NAMES = {1: "Monday", 2: "Tuesday", 3: "Wednesday", 4: "Thursday", 5: "Friday", 6: "Saturday", 7: "Sunday"}


class Weekdays(Field):
    """Ticked ISO weekdays (1 Monday .. 7 Sunday) as a sorted tuple; none ticked is (). Checkboxes."""

    def process_formdata(self, valuelist):
        days = set()
        for raw in valuelist:
            if raw not in {str(day) for day, _ in WEEKDAYS}:
                self.data = ()
                raise ValueError("Choose the days from Monday to Sunday.")
            days.add(int(raw))
        self.data = tuple(sorted(days))

    def process_data(self, value):
        self.data = tuple(sorted(value or ()))

    def options(self):
        """(value, short label, full name, ticked) for each weekday."""
        ticked = set(self.data or ())
        return [(day, short, WEEKDAY_NAMES[day], day in ticked) for day, short in WEEKDAYS]


class Number(Field):
    """A decimal number ("1.5", "1,5", "12,000.50", "$300"), or None when left empty; a text box.

    Only the shape: ranges are the service's. Infinity, NaN and exponents are not numbers a
    person types (and 1e30 would overflow the database), so they are refused here.
    """

    NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)")
    widget = TextInput()

    def __init__(self, label=None, message="Enter a number, like 2.5.", money: bool = False, **kwargs):
        self.message = message
        self.money = money
        super().__init__(label, **kwargs)

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else plain_number(self.data)

    def process_formdata(self, valuelist):
        raw = (valuelist[0] if valuelist else "").strip()
        self.data = None
        if not raw:
            return
        text = raw.replace(" ", "")
        if self.money:
            text = text.replace("$", "")
            if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?", text):
                text = text.replace(",", "")  # 12,000.50
        if not self.NUMBER.fullmatch(text) or len(text) > 20:
            raise ValueError(self.message)
        try:
            self.data = Decimal(text.replace(",", "."))
        except InvalidOperation:
            raise ValueError(self.message) from None


class Whole(IntegerField):
    """A whole number, or None when left empty (a text box with the digits keyboard)."""

    widget = TextInput()

    def __init__(self, label=None, message="Enter a whole number.", **kwargs):
        self.message = message
        kwargs.setdefault("render_kw", {"inputmode": "numeric"})
        super().__init__(label, **kwargs)

    def process_formdata(self, valuelist):
        raw = (valuelist[0] if valuelist else "").strip()
        self.data = None
        if raw:
            if not re.fullmatch(r"[+-]?[0-9]{1,9}", raw):
                raise ValueError(self.message)
            self.data = int(raw)


class OptionSelect:
    """A <select> of the field's `options`: (value, label) pairs, or (group label, [(value, label), ...])
    for an <optgroup>; `blank` (when not None) is the label of an empty first option."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        current = field._value()

        def option(value, label):  # by hand: wtforms' html_params per option cost a long list milliseconds
            chosen = " selected" if str(value) == current else ""
            return f'<option value="{escape(value)}"{chosen}>{escape(label)}</option>'

        html = [f"<select {html_params(name=field.name, **kwargs)}>"]
        if field.blank is not None:
            html.append(option("", field.blank))
        for value, label in field.options:
            if isinstance(label, (list, tuple)):
                html.append(f"<optgroup {html_params(label=value)}>")
                html.extend(option(v, text) for v, text in label)
                html.append("</optgroup>")
            else:
                html.append(option(value, label))
        html.append("</select>")
        return Markup("".join(html))


class Ref(Whole):
    """The id of a row chosen from a list, or None; anything else is "choose from the list".

    Rendered as a select of `options` ((id, label) pairs the page sets from services/choices.py),
    after an empty first option `blank`. Parsing never consults the options: the service checks
    that the row exists and may be chosen.
    """

    widget = OptionSelect()

    def __init__(self, label=None, message="Choose from the list.", blank="Choose", **kwargs):
        self.options: list[tuple[int, str]] = []
        self.blank = blank
        kwargs.setdefault("render_kw", {})
        super().__init__(label, message=message, **kwargs)

    def process_data(self, value):
        self.data = value if isinstance(value, int) else None

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return "" if self.data is None else str(self.data)

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        if self.data is not None and not 0 < self.data <= LARGEST_ID:
            raise ValueError(self.message)


class Refs(Field):
    """Many ids (checkboxes with one name); values that are not ids are ignored."""

    def process_formdata(self, valuelist):
        self.data = [int(v) for v in valuelist if re.fullmatch(r"[0-9]{1,10}", v or "") and 0 < int(v) <= LARGEST_ID]


class ChoiceOption(NamedTuple):
    value: str
    label: str
    selected: bool


class Choice(Field):
    """One value of an enum, or None when left empty; a select of its `options`.

    `options` are (member, label) pairs in the order to offer them (a page may narrow them, e.g.
    to the allowed moves); by default every member, named by `labels` or in words. `blank`, when
    given, labels an empty first option.
    """

    widget = OptionSelect()

    def __init__(self, label=None, enum=None, message="Choose from the list.", options=None, labels=None,
                 blank=None, **kwargs):
        self.enum = enum
        self.message = message
        self.blank = blank
        labels = labels or {}
        if options is None:
            options = [(member, labels.get(member, member.value.replace("_", " ").capitalize())) for member in enum]
        self.options = [(getattr(value, "value", value), text) for value, text in options]
        super().__init__(label, **kwargs)

    def _value(self):
        return self.raw_data[0] if self.raw_data else (self.data.value if self.data else "")

    def iter_choices(self):
        """The options with whether each is the current one (the radio_group macro draws them)."""
        current = self._value()
        for value, label in self.options:
            yield ChoiceOption(value, label, value == current)

    def process_data(self, value):
        try:
            self.data = self.enum(value) if value not in (None, "") else None
        except ValueError:
            self.data = None

    def process_formdata(self, valuelist):
        raw = (valuelist[0] if valuelist else "").strip()
        self.data = None
        if raw:
            try:
                self.data = self.enum(raw)
            except ValueError:
                raise ValueError(self.message) from None


RefPick = Ref  # an id chosen from `options` set by the view (the admin pages' name for it)


class Pick(Text):
    """Text chosen from `options`, set by the view (the list depends on the data): a <select>."""

    widget = OptionSelect()

    def __init__(self, label=None, blank=None, options=None, **kwargs):
        self.options = list(options or [])
        self.blank = blank
        super().__init__(label, **kwargs)

    def _value(self):
        return self.raw_data[0] if self.raw_data else (self.data or "")


class Cursor(Field):
    """A position in a long list (an event id), or None; anything else is ignored (start from the top)."""

    widget = HiddenInput()

    def process_formdata(self, valuelist):
        raw = (valuelist[0] if valuelist else "").strip()
        self.data = int(raw) if re.fullmatch(r"[0-9]{1,18}", raw) else None

    def _value(self):
        return "" if self.data is None else str(self.data)


class Stamp(HiddenField):
    """When the row was last changed, as the form was made from it; a missing or garbled one is None."""

    def process_formdata(self, valuelist):
        raw = (valuelist[0] if valuelist else "").strip()
        try:
            self.data = datetime.fromisoformat(raw) if raw else None
        except ValueError:
            self.data = None

    def _value(self):
        return self.data.isoformat() if isinstance(self.data, datetime) else ""


class Flag(BooleanField):
    """A checkbox: on when sent with any value but "", "0", "false", "off"; it sends "1"."""

    false_values = ("", "0", "false", "off")

    def _value(self):
        return "1"


class ParseForm(FlaskForm):
    """A form that only parses. CSRFProtect has checked the token of every POST already."""

    class Meta:
        csrf = False


def parse(form_class: type[ParseForm], formdata=None, *, rules=None) -> ParseForm:
    """The request's form, parsed.

    `rules(form)`, when given, is the service's side-effect-free check of the fields (a dict of
    messages): with a shape error, its messages for the other fields are shown too, so the person
    fixes everything in one go.
    :raises Invalid: some field has the wrong shape (each named).
    """
    form = form_class(formdata=formdata if formdata is not None else request.form)
    if not form.validate():
        errors = {name: messages[0] for name, messages in form.errors.items() if messages}
        if rules is not None:
            errors = {**rules(form), **errors}
        first = next(iter(form.errors))
        raise Invalid(errors[first], first, errors)
    return form


def page_form(form_class: type[ParseForm], error=None, *, data: dict | None = None, **choices) -> ParseForm:
    """The form a page shows: what was sent, with `error`'s messages beside their fields (after a
    refusal), or `data` (the row as it is). `choices` fills the options of `Ref` fields by name."""
    if error is not None:
        form = form_class(formdata=request.form)
        for field in form:
            field.errors = []  # parse warnings of the rebuild are not what the reader is told
        for name, message in (error.errors or {error.field: error.message}).items():
            field = form._fields.get(name) if name else None
            if field is not None:
                field.errors = [message]
            elif message not in form.form_errors:
                form.form_errors.append(message)
    else:
        form = form_class(formdata=None, data=data or {})
    for name, options in choices.items():
        form[name].options = list(options)
    return form


# --- the business forms ---------------------------------------------------------------------

class NewTicketForm(ParseForm):
    title = Text("Title", render_kw={"maxlength": 255})
    description = Text("Description", widget=TextArea(), render_kw={"rows": 5})
    category = Choice("Category", enum=TicketCategory, message="Choose a category from the list.", blank="Choose")
    priority = Choice("Priority", enum=TicketPriority, message="Choose a priority from the list.",
                      default=TicketPriority.MEDIUM, labels={TicketPriority.CRITICAL: "Critical: work has stopped"})
    customer_id = Ref("Customer", message="Choose the customer.")
    contact_id = Ref("Contact", message="Choose a contact of this customer.")


class ReplyForm(ParseForm):
    body = Text("Message")


class CommentForm(ParseForm):
    body = Text("Message")
    internal = Flag("Internal note")


class RatingForm(ParseForm):
    customer_satisfaction = Whole("Rating", message="Choose a rating from 1 to 5.")
    satisfaction_comment = Text("Comment")


STALE_FORM = "This form is out of date. Reload the page and make your change again."


class VersionedForm(ParseForm):
    """A change to a ticket carries the version it was made against (a form without it is out of date)."""

    version = Whole("Version", message=STALE_FORM)

    def validate_version(self, field):
        if field.data is None:
            raise ValidationError(STALE_FORM)


class StatusForm(VersionedForm):
    status = Choice("Status", enum=TicketStatus, message="Choose a status from the list.")
    resolution_notes = Text("Resolution notes")
    message = Text("Message to the customer")  # what is awaited, when waiting for the customer


class AssignForm(VersionedForm):
    assigned_employee_id = Ref("Assigned to", message="Choose an active technician, senior technician or admin.")


class DetailsForm(VersionedForm):
    priority = Choice("Priority", enum=TicketPriority, message="Choose a priority from the list.")
    estimated_hours = Number("Estimate (hours)", message="Enter the estimate in hours, like 2.5.")


class BulkForm(ParseForm):
    ticket_ids = Refs("Tickets")
    action = Text("Change")
    value = Text("To")
    resolution_notes = Text("Resolution notes")


class TimeEntryForm(ParseForm):
    work_date = Day("Date")
    hours = Number("Hours", message="Enter the hours, like 1.5, or a start and an end time.",
                   render_kw={"inputmode": "decimal", "placeholder": "1.5"})
    start_time = ClockTime("or from")
    end_time = ClockTime("to")
    work_category = Choice("Category", enum=WorkCategory, message="Choose a category from the list.",
                           default=WorkCategory.SUPPORT)
    is_billable = Flag("Billable", default=True)
    description = Text("What you did")
    work = Text("Ticket or project")  # "ticket:12" or "project:3" (the timesheet's picker)
    ticket_id = Ref("Ticket", message="Choose a ticket or a project.")
    project_id = Ref("Project", message="Choose a ticket or a project.")

    def work_ids(self) -> tuple[int | None, int | None]:
        """(ticket id, project id) from the picker ("ticket:12") or the hidden fields."""
        kind, _, number = (self.work.data or "").partition(":")
        picked = int(number) if re.fullmatch(r"[0-9]{1,9}", number) else None
        return ((picked if kind == "ticket" else None) or self.ticket_id.data,
                (picked if kind == "project" else None) or self.project_id.data)


class DecideEntriesForm(ParseForm):
    entry_ids = Refs("Entries")
    decision = Text("Decision")
    rejection_reason = Text("Reason")


class ProjectForm(ParseForm):
    project_name = Text("Project name", render_kw={"maxlength": 255})
    customer_id = Ref("Customer", message="Choose the customer.")
    project_manager_id = Ref("Project manager", message="Choose a project manager.")
    budget_amount = Number("Budget ($)", money=True, message="Enter the budget as an amount, like 12000 or 12000.50.",
                           render_kw={"inputmode": "decimal"})
    start_date = Day("Start", message="Enter the start date as YYYY-MM-DD.")
    planned_end_date = Day("Planned end", message="Enter the planned end date as YYYY-MM-DD.")
    scope_description = Text("Scope", widget=TextArea(), render_kw={"rows": 3})
    completion_percentage = Whole("Completion (%)", message="Enter the completion as a whole percentage, 0 to 100.")
    project_status = Choice("Status", enum=ProjectStatus, message="Choose a status from the list.")


class PhaseForm(ParseForm):
    phase_name = Text("Phase name")
    deliverables = Text("Deliverables", widget=TextArea(), render_kw={"rows": 2})
    budget_allocation = Number("Budget ($)", money=True,
                               message="Enter the phase budget as an amount, like 12000 or 12000.50.",
                               render_kw={"inputmode": "decimal"})
    start_date = Day("Start", message="Enter the start date as YYYY-MM-DD.")
    end_date = Day("End", message="Enter the end date as YYYY-MM-DD.")
    requires_approval = Flag("The customer's sponsor must approve it before it starts")


class PhaseStatusForm(ParseForm):
    phase_status = Choice("Status", enum=PhaseStatus, message="Choose a status from the list.")


class PhaseDecisionForm(ParseForm):
    reason = StringField("Reason")  # kept exactly as written: the service trims and checks it


class ProfileForm(ParseForm):
    first_name = Text("First name", render_kw={"maxlength": 100, "autocomplete": "given-name"})
    last_name = Text("Last name", render_kw={"maxlength": 100, "autocomplete": "family-name"})
    phone = Text("Phone", description="Optional. Digits with spaces and + - ( ) . / as you like, up to 20 "
                                      "characters: +1 303 555 0100 x12.",
                 render_kw={"type": "tel", "maxlength": 20, "autocomplete": "tel", "inputmode": "tel"})
    mobile = Text("Mobile", description="Optional; needed for text messages.",
                  render_kw={"type": "tel", "maxlength": 20, "autocomplete": "mobile tel", "inputmode": "tel"})
    communication_preference = Choice("How to contact you", enum=CommunicationPreference,
                                      message="Choose how we should contact you.",
                                      labels=dict(COMMUNICATION_CHOICES))


class EmployeeForm(ParseForm):
    """An employee, as an admin hires or changes them; each field's hint is the seed's rule."""

    rules = employees.FIELD_RULES
    employee_number = Text("Employee number", description=rules["employee_number"],
                           render_kw={"autocomplete": "off", "maxlength": 10})
    first_name = Text("First name", description=rules["first_name"], render_kw={"autocomplete": "off"})
    last_name = Text("Last name", description=rules["last_name"], render_kw={"autocomplete": "off"})
    email = Text("Email", description=rules["email"], render_kw={"type": "email", "autocomplete": "off"})
    phone = Text("Phone", description=rules["phone"], render_kw={"type": "tel", "autocomplete": "off"})
    role = Choice("Role", enum=EmployeeRole, options=list(employees.ROLE_LABELS.items()), blank="Choose a role",
                  message="Choose a role from the list.", description=rules["role"])
    department = Text("Department", description=rules["department"])
    hire_date = Day("Hire date", message="Enter the hire date as YYYY-MM-DD.", description=rules["hire_date"])
    hourly_rate_internal = Number("Internal cost rate ($ an hour)", money=True, widget=TextInput(),
                                  message="Enter the internal rate as an amount, like 55 or 55.50.",
                                  description=rules["hourly_rate_internal"], render_kw={"inputmode": "decimal"})
    hourly_rate_client = Number("Client rate ($ an hour)", money=True, widget=TextInput(),
                                message="Enter the client rate as an amount, like 100 or 99.50.",
                                description=rules["hourly_rate_client"], render_kw={"inputmode": "decimal"})
    capacity_hours_weekly = Number("Weekly capacity (hours)", widget=TextInput(),
                                   message="Enter the weekly capacity in hours, like 40 or 37.5.",
                                   description=rules["capacity_hours_weekly"], render_kw={"inputmode": "decimal"})
    employment_status = Choice("Status", enum=EmploymentStatus, options=list(employees.STATUS_LABELS.items()),
                               message="Choose a status from the list.", description=rules["employment_status"])
    termination_date = Day("Termination date", message="Enter the termination date as YYYY-MM-DD.",
                           description=rules["termination_date"])
    skills_certifications = Text("Skills and certifications", widget=TextArea(), render_kw={"rows": 2},
                                 description=rules["skills_certifications"])
    is_on_call = BooleanField("On call (may be called outside office hours)", false_values=Flag.false_values)
    updated_at = Stamp()

    def details(self) -> employees.EmployeeDetails:
        return employees.EmployeeDetails(**{name: self[name].data for name in employees.FIELD_ORDER})


class EmployeeFilterForm(ParseForm):
    q = Text("Search")
    role = Choice("Role", enum=EmployeeRole, options=list(employees.ROLE_LABELS.items()), blank="Any",
                  message="Choose a role from the list.")
    department = Pick("Department", blank="Any")
    status = Pick("Status", options=[("active", "Active"), ("inactive", "Inactive"), ("terminated", "Terminated"),
                                     ("any", "Any status")])
    page = Whole("Page", message="Enter a page number.")

    def validate_status(self, field):
        if field.data and field.data not in employees.STATUS_FILTERS:
            raise ValidationError("Choose a status from the list.")

    def filters(self) -> employees.EmployeeFilters:
        return employees.EmployeeFilters(q=self.q.data or "", role=self.role.data, department=self.department.data or "",
                                         status=self.status.data or "active", page=max(1, self.page.data or 1))


class HandOverForm(ParseForm):
    tickets_to = RefPick("Every open ticket goes to", message="Choose an active technician, senior technician or admin.")
    projects_to = RefPick("Every open project goes to", message="Choose an active project manager or admin.")


class AuditFilterForm(ParseForm):
    actor = Pick("Who", blank="Anyone")
    table = Pick("Kind of object", blank="Any")
    object = Text("Object", description="A number like TKT-2026-000123, INV-2026-00042 or EMP001, or an id "
                                        "with its kind.")
    row_id = Cursor()  # the pages' history links name their row by id (table=...&row_id=...)
    action = Pick("Action", blank="Any")
    date_from = Day("From", message="Enter the first day as YYYY-MM-DD.")
    date_to = Day("To", message="Enter the last day as YYYY-MM-DD.")
    before = Cursor()
    after = Cursor()

    def filters(self):
        from portal.services.audit_log import AuditFilters

        obj = self.object.data or (str(self.row_id.data) if self.row_id.data else "")
        return AuditFilters(actor=self.actor.data or "", table=self.table.data or "", object=obj,
                            action=self.action.data or "", date_from=self.date_from.data, date_to=self.date_to.data,
                            before=self.before.data, after=self.after.data)


class SignInForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."), Length(max=255)],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired("Enter your password."), Length(max=256)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()


class SecondFactorForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired("Enter the code."), Length(max=20)],
                       description="The 6-digit code from your authenticator app, or one of your recovery codes.",
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True})


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."),
                                            Email("Enter a valid email address."), Length(max=255)],
                       render_kw={"autocomplete": "username", "autofocus": True})


def _new_password(label: str) -> PasswordField:
    return PasswordField(
        label, validators=[DataRequired("Choose a password."), Length(max=256)],
        description="At least 8 characters. A phrase of a few unrelated words is strong and easy to remember.",
        render_kw={"autocomplete": "new-password"})


def _repeat(field_name: str) -> PasswordField:
    return PasswordField("Repeat the new password",
                         validators=[DataRequired("Repeat the password."),
                                     EqualTo(field_name, "The two passwords are not the same.")],
                         render_kw={"autocomplete": "new-password"})


class NewPasswordForm(FlaskForm):
    password = _new_password("New password")
    confirm = _repeat("password")


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")],
                                     render_kw={"autocomplete": "current-password"})
    new_password = _new_password("New password")
    confirm = _repeat("new_password")


class EnableTwoFactorForm(FlaskForm):
    code = StringField("Code from the app", validators=[DataRequired("Enter the 6-digit code."), Length(max=10)],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"})


class DisableTwoFactorForm(FlaskForm):
    password = PasswordField("Your password", validators=[DataRequired("Enter your password.")],
                             render_kw={"autocomplete": "current-password"})


class InviteForm(FlaskForm):
    """Only the CSRF token: the person is in the URL."""


class SecuritySettingsForm(FlaskForm):
    require_two_factor = BooleanField("Require two-factor sign-in for all employees")


class SignOutForm(FlaskForm):
    """Only the CSRF token."""


def apply_domain_error(form: FlaskForm, error) -> None:
    """Show a service's message beside its field (or at the top when it names none)."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = list(field.errors or []) + [error.message]
    else:
        form.form_errors.append(error.message)


# --- billing (issue 11) ---------------------------------------------------------------------

class InvoiceFilterForm(ParseForm):
    q = Text("Search", description="An invoice number or a customer's name.")
    status = Pick("Status", blank="Any", options=[("draft", "Draft"), ("sent", "Sent"), ("overdue", "Overdue"),
                                                   ("paid", "Paid"), ("cancelled", "Cancelled")])
    customer_id = Ref("Customer", blank="Any customer")
    date_from = Day("Dated from", message="Enter the first day as YYYY-MM-DD.")
    date_to = Day("Dated to", message="Enter the last day as YYYY-MM-DD.")
    page = Whole("Page", message="Enter a page number.")

    def validate_status(self, field):
        if field.data and field.data not in {value for value, _ in field.options}:
            raise ValidationError("Choose a status from the list.")

    def filters(self):
        from portal.models import InvoiceStatus
        from portal.services.billing import InvoiceFilters

        return InvoiceFilters(q=self.q.data or "", status=InvoiceStatus(self.status.data) if self.status.data else None,
                              customer_id=self.customer_id.data, date_from=self.date_from.data,
                              date_to=self.date_to.data, page=max(1, self.page.data or 1))


class GenerateInvoiceForm(ParseForm):
    customer_id = Ref("Customer", message="Choose the customer to bill.")
    period_start = Day("First day", message="Enter the first day of the period as YYYY-MM-DD.")
    period_end = Day("Last day", message="Enter the last day of the period as YYYY-MM-DD.")
    include_monthly_fees = Flag("Bill the contracts' monthly fees", default=True)
    fingerprint = HiddenField()


class InvoiceLineForm(ParseForm):
    item_type = Pick("Kind", options=[("expense", "Expense"), ("discount", "Discount")])
    description = Text("Description", render_kw={"maxlength": 500})
    quantity = Number("Quantity", message="Enter a quantity, like 1.")
    unit_price = Number("Amount each", money=True, message="Enter an amount, like 49.90.")

    def line(self):
        from portal.models import LineItemType
        from portal.services.billing import NewLine

        kind = self.item_type.data if self.item_type.data in ("expense", "discount") else None
        return NewLine(item_type=LineItemType(kind) if kind else None, description=self.description.data or "",
                       quantity=self.quantity.data, unit_price=self.unit_price.data)


class PaymentForm(ParseForm):
    payment_date = Day("Received on", message="Enter the day as YYYY-MM-DD.")
    amount = Number("Amount", money=True, message="Enter the amount received, like 1,250.00.")
    method = Pick("Method", options=[("bank_transfer", "Bank transfer"), ("card", "Card"), ("check", "Check"),
                                     ("cash", "Cash"), ("other", "Other")])
    reference = Text("Reference", description="The bank's reference or the check number (optional).",
                     render_kw={"maxlength": 100})

    def payment(self):
        from portal.services.billing import NewPayment

        return NewPayment(payment_date=self.payment_date.data, amount=self.amount.data, method=self.method.data,
                          reference=self.reference.data or "")


class MonthEndForm(ParseForm):
    month = Text("Month", description="A month that is over, as year and month, like 2026-10.")


class ExportForm(ParseForm):
    date_from = Day("From", message="Enter the first day as YYYY-MM-DD.")
    date_to = Day("To", message="Enter the last day as YYYY-MM-DD.")
# --- customers, contacts, contracts (the staff's CRM pages) ----------------------------------------

def _crm():
    from portal.services import crm

    return crm


class CustomerForm(ParseForm):
    """A customer, as an account manager adds or changes it; each field's hint is the seed's rule."""

    from portal.models import AccountStatus as _Status, CompanySize as _Size, ServiceTier as _Tier
    from portal.services.crm import CUSTOMER_RULES as rules

    company_name = Text("Company name", description=rules["company_name"], render_kw={"autocomplete": "organization"})
    industry = Text("Industry", description=rules["industry"])
    company_size = Choice("Company size", enum=_Size, message="Choose a company size from the list.")
    service_tier = Choice("Service tier", enum=_Tier, description=rules["service_tier"],
                          message="Choose a service tier from the list.")
    account_status = Choice("Account status", enum=_Status, description=rules["account_status"],
                            message="Choose a status from the list.")
    account_manager_id = Ref("Account manager", blank="Nobody yet", description=rules["account_manager_id"],
                             message="Choose an active account manager or administrator.")
    primary_contact_email = Text("Main email", description=rules["primary_contact_email"],
                                 render_kw={"type": "email", "autocomplete": "off"})
    account_health_score = Number("Health score", description=rules["account_health_score"],
                                  message="Enter the health score as a number from 0 to 1, like 0.75.",
                                  render_kw={"inputmode": "decimal"})
    tax_id = Text("Tax ID", description=rules["tax_id"])
    timezone = Text("Time zone", description=rules["timezone"])
    billing_address = Text("Billing address", widget=TextArea(), render_kw={"rows": 3},
                           description=rules["billing_address"])
    service_address = Text("Service address", widget=TextArea(), render_kw={"rows": 3},
                           description=rules["service_address"])
    updated_at = Stamp()

    def details(self):
        crm = _crm()
        return crm.CustomerDetailsForm(**{name: self[name].data for name in crm.CUSTOMER_FIELD_ORDER})


class CustomerFilterForm(ParseForm):
    from portal.models import AccountStatus as _Status, ServiceTier as _Tier

    q = Text("Search")
    status = Choice("Status", enum=_Status, blank="Any", message="Choose a status from the list.")
    tier = Choice("Tier", enum=_Tier, blank="Any", message="Choose a tier from the list.")
    manager = Pick("Account manager", blank="Anyone")
    page = Whole("Page", message="Enter a page number.")

    def validate_manager(self, field):
        if field.data and field.data != "none" and not re.fullmatch(r"[0-9]{1,9}", field.data):
            raise ValidationError("Choose an account manager from the list.")

    def filters(self):
        return _crm().CustomerFilters(q=self.q.data or "", status=self.status.data, tier=self.tier.data,
                                      manager=self.manager.data or "", page=max(1, self.page.data or 1))


class ContactForm(ParseForm):
    """A customer's contact, as an account manager adds or changes them."""

    from portal.services.crm import CONTACT_RULES as rules

    first_name = Text("First name", description=rules["first_name"], render_kw={"autocomplete": "off"})
    last_name = Text("Last name", description=rules["last_name"], render_kw={"autocomplete": "off"})
    email = Text("Email", description=rules["email"], render_kw={"type": "email", "autocomplete": "off"})
    title = Text("Job title", description=rules["title"])
    department = Text("Department", description=rules["department"])
    phone = Text("Phone", description=rules["phone"], render_kw={"type": "tel", "autocomplete": "off"})
    mobile = Text("Mobile", description=rules["mobile"], render_kw={"type": "tel", "autocomplete": "off"})
    communication_preference = Choice("Contact them by", enum=CommunicationPreference,
                                      message="Choose how we should contact them.",
                                      labels=dict(COMMUNICATION_CHOICES),
                                      description=rules["communication_preference"])
    is_primary_contact = Flag("Primary contact", description=rules["is_primary_contact"])
    is_billing_contact = Flag("Billing contact", description=rules["is_billing_contact"])
    can_approve_projects = Flag("Project sponsor", description=rules["can_approve_projects"])
    can_create_tickets = Flag("May open tickets", description=rules["can_create_tickets"])
    updated_at = Stamp()

    def details(self):
        crm = _crm()
        return crm.ContactDetails(**{name: self[name].data for name in crm.CONTACT_FIELD_ORDER})


class ContractForm(ParseForm):
    """A customer's contract, as an account manager makes or changes it."""

    from portal.models import ContractStatus as _Status, ServiceTier as _Tier
    from portal.services.contracts import CONTRACT_RULES as rules

    service_tier = Choice("Service tier", enum=_Tier, blank="Choose a tier", description=rules["service_tier"],
                          message="Choose a service tier from the list.")
    contract_status = Choice("Status", enum=_Status, description=rules["contract_status"],
                             message="Choose a status from the list.")
    start_date = Day("Start date", message="Enter the start date as YYYY-MM-DD.", description=rules["start_date"])
    end_date = Day("End date", message="Enter the end date as YYYY-MM-DD.", description=rules["end_date"])
    monthly_fee = Number("Monthly fee ($)", money=True, message="Enter the monthly fee as an amount, like 1500.",
                         description=rules["monthly_fee"], render_kw={"inputmode": "decimal"})
    included_hours = Whole("Included hours a month", message="Enter the included hours as a whole number, like 10.",
                           description=rules["included_hours"])
    hourly_rate_additional = Number("Additional hour rate ($)", money=True,
                                    message="Enter the additional hour rate as an amount, like 125.",
                                    description=rules["hourly_rate_additional"], render_kw={"inputmode": "decimal"})
    response_time_hours = Whole("Response time (hours)", message="Enter the response time in whole hours, like 4.",
                                description=rules["response_time_hours"])
    resolution_time_hours = Whole("Resolution time (hours)",
                                  message="Enter the resolution time in whole hours, like 24.",
                                  description=rules["resolution_time_hours"])
    coverage_days = Weekdays("Covered days", description=rules["coverage_days"])
    coverage_start = ClockTime("Covered from", description=rules["coverage_start"])
    coverage_end = ClockTime("Covered until", description=rules["coverage_end"])
    price_increase_annual = Number("Annual price increase (%)", message="Enter the increase in percent, like 3.",
                                   description=rules["price_increase_annual"], render_kw={"inputmode": "decimal"})
    auto_renewal = Flag("Renews automatically")
    terms_conditions = Text("Terms and conditions", widget=TextArea(), render_kw={"rows": 3},
                            description=rules["terms_conditions"])
    updated_at = Stamp()

    def terms(self):
        from portal.services.contracts import CONTRACT_FIELD_ORDER, ContractTerms

        return ContractTerms(**{name: self[name].data for name in CONTRACT_FIELD_ORDER})


class RenewForm(ParseForm):
    """Only the contract's state when the preview was made."""

    updated_at = Stamp()
# --- mail in and the holiday calendar (issue 15) ----------------------------------------------

class AttachMailForm(ParseForm):
    customer_id = Ref("Customer", message="Choose the customer this mail is from.")
    first_name = Text("Sender's first name", description="Left empty: from the mail's From.")
    last_name = Text("Sender's last name", description="Left empty: from the mail's From.")


class UnmatchedPageForm(ParseForm):
    before = Whole("Before", message="Choose a page from the links.")


class HolidayForm(ParseForm):
    day = Day("Date")
    name = Text("Name")


class HolidayYearForm(ParseForm):
    year = Whole("Year", message="Enter a year like 2026.")


class PrefillHolidaysForm(ParseForm):
    year = Whole("Year", message="Enter a year like 2026.")
    country = Pick("Country", blank="Choose")
