"""The staff's invoices (/staff/invoices): the list, generate (a preview, then a draft), one invoice and
its life (edit a draft, delete, send, payments, cancel), the month-end run and the accountant's export.

Account managers and admins (policy.may_bill). The rules are in services/invoicing.py (what an
invoice bills), services/billing.py (its life), services/invoice_runs.py (month-end) and
services/billing_export.py (the export); these views only parse, call and render.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, make_response, request, url_for
from werkzeug.datastructures import MultiDict

from portal.extensions import db
from portal.services import billing, billing_export, choices, clock, invoice_runs, invoicing, policy
from portal.services.errors import Conflict
from portal.services.invoice_pdf import issuer_from_config, render_invoice_pdf
from portal.web.errors import error_page
from portal.web.forms import (
    ExportForm,
    GenerateInvoiceForm,
    InvoiceFilterForm,
    InvoiceLineForm,
    MonthEndForm,
    PaymentForm,
    page_form,
    parse,
)
from portal.web.rendering import after_change, is_htmx, render
from portal.web.security import current_principal, require

bp = Blueprint("invoices", __name__, url_prefix="/staff/invoices")


def _with_errors(form, error):
    if error is not None:
        for name, message in (error.errors or {error.field: error.message}).items():
            if name and name in form:
                form[name].errors = [message]
            elif message not in form.form_errors:
                form.form_errors.append(message)
    return form


# --- the list ----------------------------------------------------------------------------------

def _list_page(form: InvoiceFilterForm, filters: billing.InvoiceFilters, error=None):
    principal = current_principal()
    listing = None if error else billing.invoice_list(db.session, principal, filters)
    customer_q = request.args.get("customer_q", "")
    return render("staff/invoices/list.html", block="invoice_results", listing=listing, filters=filters,
                  customer_q=customer_q.strip()[:100],
                  # The filter form is not part of an htmx refresh of the results: its choices only for the page.
                  customer_filter=None if is_htmx() else choices.customer_filter(
                      db.session, customer_q, selected=filters.customer_id),
                  form=_with_errors(form, error), status_labels=billing.STATUS_LABELS,
                  status=422 if error else 200)


@bp.get("/")
@require(policy.may_bill)
@error_page(lambda error: _list_page(InvoiceFilterForm(formdata=request.args), billing.InvoiceFilters(), error),
            toast=False)
def list_invoices():
    """Every invoice, newest first, filtered in the URL (active search for htmx), 25 a page."""
    form = parse(InvoiceFilterForm, request.args)
    return _list_page(form, form.filters())


# --- generate: a preview, then a draft ------------------------------------------------------------

def _request(form: GenerateInvoiceForm) -> invoicing.InvoiceRequest:
    from portal.services.errors import Invalid

    errors = {}
    if form.customer_id.data is None:
        errors["customer_id"] = "Choose the customer to bill."
    if form.period_start.data is None:
        errors["period_start"] = "Enter the first day of the period as YYYY-MM-DD."
    if form.period_end.data is None:
        errors["period_end"] = "Enter the last day of the period as YYYY-MM-DD."
    if errors:
        field = next(iter(errors))
        raise Invalid(errors[field], field, errors)
    return invoicing.InvoiceRequest(form.customer_id.data, form.period_start.data, form.period_end.data,
                                    include_monthly_fees=bool(form.include_monthly_fees.data))


# The service names the period's fields as the API does; the page's fields are named for people.
FIELD_NAMES = {"billing_period_start": "period_start", "billing_period_end": "period_end"}


def _renamed(error):
    if error is None:
        return None
    error.errors = {FIELD_NAMES.get(k, k): v for k, v in (error.errors or {error.field: error.message}).items()}
    error.field = FIELD_NAMES.get(error.field, error.field)
    return error


def _generate_page(form: GenerateInvoiceForm, plan=None, error=None):
    form.customer_id.options = billing.customer_choices(db.session, current_principal())
    drafts = []
    if plan is not None and not plan.lines:  # nothing to bill: say where the period's work may be waiting
        drafts = billing.drafts_in_period(db.session, current_principal(), plan.customer.customer_id,
                                          plan.request.period_start, plan.request.period_end)
    return render("staff/invoices/new.html", block="invoice_preview", form=_with_errors(form, _renamed(error)),
                  plan=plan, drafts=drafts, line_labels=billing.LINE_TYPE_LABELS,
                  status=(409 if isinstance(error, Conflict) else 422) if error else 200)


def _default_period() -> dict:
    last_month_end = clock.today().replace(day=1) - timedelta(days=1)
    return {"period_start": last_month_end.replace(day=1), "period_end": last_month_end, "include_monthly_fees": True}


def _generate_error(error):
    form = GenerateInvoiceForm(formdata=request.form if request.method == "POST" else request.args)
    plan = None
    if isinstance(error, Conflict):  # what changed: the new preview, beside the message
        try:
            plan = invoicing.plan_invoice(db.session, current_principal(), _request(form),
                                          tax_rate=current_app.config["TAX_RATE"])
            form.fingerprint.data = plan.fingerprint
        except Exception:  # noqa: BLE001 - the first error is the one to show
            plan = None
    return _generate_page(form, plan, error)


@bp.get("/new")
@require(policy.may_bill)
@error_page(_generate_error, toast=False)
def new_invoice():
    """Choose a customer and a period; with both, the preview of exactly the lines the draft will have."""
    if "customer_id" not in request.args:
        return _generate_page(GenerateInvoiceForm(formdata=None, data=_default_period()))
    args = request.args
    if "period_start" not in args and "period_end" not in args:  # "Bill a period" from a customer's page
        defaults = _default_period()
        args = MultiDict({**args.to_dict(), "period_start": defaults["period_start"].isoformat(),
                          "period_end": defaults["period_end"].isoformat(), "include_monthly_fees": "1"})
    form = parse(GenerateInvoiceForm, args)
    plan = invoicing.plan_invoice(db.session, current_principal(), _request(form),
                                  tax_rate=current_app.config["TAX_RATE"])
    form.fingerprint.data = plan.fingerprint
    return _generate_page(form, plan)


@bp.post("/")
@require(policy.may_bill)
@error_page(_generate_error, toast=False)
def generate_invoice():
    """Make the draft the preview showed (refused, with the new preview, if the work changed meanwhile)."""
    form = parse(GenerateInvoiceForm)
    invoice = invoicing.generate_invoice(db.session, current_principal(), _request(form),
                                         invoice_date=clock.today(), tax_rate=current_app.config["TAX_RATE"],
                                         expected_fingerprint=form.fingerprint.data or None)
    return after_change(f"Draft {invoice.invoice_number} is made. Check it, add a discount or an expense if "
                        "needed, then send it.", url_for("invoices.show_invoice", invoice_id=invoice.invoice_id))


# --- one invoice ----------------------------------------------------------------------------------

def _invoice_page(invoice_id: int, *, error=None, scope: str = ""):
    view = billing.staff_invoice(db.session, current_principal(), invoice_id)
    line_form = page_form(InvoiceLineForm, error if scope == "line" else None,
                          data={"item_type": "discount", "quantity": 1})
    payment_form = page_form(PaymentForm, error if scope == "payment" else None,
                             data={"payment_date": clock.today(), "method": "bank_transfer",
                                   "amount": view.totals.outstanding or None})
    action_error = error.message if error is not None and scope == "action" else None
    return render("staff/invoices/show.html", view=view, line_form=line_form, payment_form=payment_form,
                  action_error=action_error, methods=billing.PAYMENT_METHODS, scope=scope,
                  status=(409 if isinstance(error, Conflict) else 422) if error else 200)


@bp.get("/<int:invoice_id>")
@require(policy.may_bill)
def show_invoice(invoice_id: int):
    return _invoice_page(invoice_id)


@bp.post("/<int:invoice_id>/lines")
@require(policy.may_bill)
@error_page(lambda error, invoice_id: _invoice_page(invoice_id, error=error, scope="line"), toast=False)
def add_line(invoice_id: int):
    form = parse(InvoiceLineForm, rules=lambda form: billing.line_errors(form.line()))
    line = billing.add_line(db.session, current_principal(), invoice_id, form.line())
    return after_change(f"{line.item_type.value.capitalize()} added.",
                        url_for("invoices.show_invoice", invoice_id=invoice_id))


@bp.post("/<int:invoice_id>/lines/<int:line_item_id>/remove")
@require(policy.may_bill)
@error_page(lambda error, invoice_id, line_item_id: _invoice_page(invoice_id, error=error, scope="action"))
def remove_line(invoice_id: int, line_item_id: int):
    billing.remove_line(db.session, current_principal(), invoice_id, line_item_id)
    return after_change("Line removed. Its work or fee month can be billed again.",
                        url_for("invoices.show_invoice", invoice_id=invoice_id))


@bp.post("/<int:invoice_id>/delete")
@require(policy.may_bill)
@error_page(lambda error, invoice_id: _invoice_page(invoice_id, error=error, scope="action"))
def delete_invoice(invoice_id: int):
    number = billing.delete_draft(db.session, current_principal(), invoice_id)
    return after_change(f"Draft {number} is deleted. Its work and fee months can be billed again.",
                        url_for("invoices.list_invoices"))


@bp.post("/<int:invoice_id>/send")
@require(policy.may_bill)
@error_page(lambda error, invoice_id: _invoice_page(invoice_id, error=error, scope="action"))
def send_invoice(invoice_id: int):
    invoice = billing.send_invoice(db.session, current_principal(), invoice_id,
                                   issuer=issuer_from_config(current_app.config),
                                   static_folder=current_app.static_folder)
    return after_change(f"{invoice.invoice_number} is sent: its PDF is kept as sent, and the billing contacts "
                        "are emailed.", url_for("invoices.show_invoice", invoice_id=invoice_id))


@bp.post("/<int:invoice_id>/payments")
@require(policy.may_bill)
@error_page(lambda error, invoice_id: _invoice_page(invoice_id, error=error, scope="payment"), toast=False)
def record_payment(invoice_id: int):
    form = parse(PaymentForm, rules=lambda form: billing.payment_errors(form.payment(), today=clock.today()))
    billing.record_payment(db.session, current_principal(), invoice_id, form.payment())
    view = billing.staff_invoice(db.session, current_principal(), invoice_id)
    message = ("Payment recorded: the invoice is paid in full." if view.invoice.invoice_status.value == "paid"
               else "Payment recorded.")
    return after_change(message, url_for("invoices.show_invoice", invoice_id=invoice_id))


@bp.post("/<int:invoice_id>/cancel")
@require(policy.may_bill)
@error_page(lambda error, invoice_id: _invoice_page(invoice_id, error=error, scope="action"))
def cancel_invoice(invoice_id: int):
    invoice = billing.cancel_invoice(db.session, current_principal(), invoice_id)
    return after_change(f"{invoice.invoice_number} is cancelled. Its lines stay on it; its work and fee months "
                        "can be billed again.", url_for("invoices.show_invoice", invoice_id=invoice_id))


@bp.get("/<int:invoice_id>/pdf")
@require(policy.may_bill)
def invoice_pdf(invoice_id: int):
    """The PDF as sent (kept), or, for a draft, how it would look now."""
    view = billing.staff_invoice(db.session, current_principal(), invoice_id)
    body = billing.kept_document(db.session, invoice_id) if view.has_document else None
    if body is None:
        body = render_invoice_pdf(view.invoice, view.lines, issuer_from_config(current_app.config),
                                  static_folder=current_app.static_folder)
    number = view.invoice.invoice_number
    response = make_response(body)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{number}.pdf"'
    return response


# --- the month-end run -----------------------------------------------------------------------------

def _month_end_page(error=None):
    last_month = clock.today().replace(day=1) - timedelta(days=1)
    form = page_form(MonthEndForm, error, data={"month": f"{last_month:%Y-%m}"})
    return render("staff/invoices/month_end.html", form=form,
                  runs=invoice_runs.recent_runs(db.session, current_principal()), status=422 if error else 200)


@bp.get("/month-end")
@require(policy.may_bill)
def month_end():
    """Start the month-end run for every active customer; the latest runs."""
    return _month_end_page()


@bp.post("/month-end")
@require(policy.may_bill)
@error_page(lambda error: _month_end_page(error), toast=False)
def start_month_end():
    form = parse(MonthEndForm)
    month = invoice_runs.parse_month(form.month.data, today=clock.today())
    run, started = invoice_runs.start_run(db.session, current_principal(), month)
    message = (f"The month-end run for {month:%B %Y} has started." if started
               else f"The month-end run for {month:%B %Y} was already running: here it is.")
    return after_change(message, url_for("invoices.show_run", run_id=run.run_id))


@bp.get("/month-end/<int:run_id>")
@require(policy.may_bill)
def show_run(run_id: int):
    """A run's progress (htmx polls the progress block every second while it runs) and its summary."""
    view = invoice_runs.run_view(db.session, current_principal(), run_id)
    return render("staff/invoices/run.html", block="run_progress", view=view)


# --- the accountant's export --------------------------------------------------------------------------

def _export_page(error=None):
    last_month_end = clock.today().replace(day=1) - timedelta(days=1)
    form = page_form(ExportForm, error, data={"date_from": last_month_end.replace(day=1), "date_to": last_month_end})
    return render("staff/invoices/export.html", form=form, status=422 if error else 200)


@bp.get("/export")
@require(policy.may_bill)
@error_page(lambda error: _export_error(error), toast=False)
def export_page():
    """Choose a period; with one, the zip of its invoices, lines and payments as CSV."""
    if "date_from" not in request.args:
        return _export_page()
    form = parse(ExportForm, request.args)
    body = billing_export.export_zip(db.session, current_principal(), form.date_from.data, form.date_to.data)
    response = make_response(body)
    response.headers["Content-Type"] = "application/zip"
    response.headers["Content-Disposition"] = (f'attachment; filename="techserv-books-{form.date_from.data}-to-'
                                               f'{form.date_to.data}.zip"')
    return response


def _export_error(error):
    form = ExportForm(formdata=request.args)
    _with_errors(form, error)
    return render("staff/invoices/export.html", form=form, status=422)
