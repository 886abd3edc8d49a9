"""The customer portal's invoices pages.

Billing and primary contacts see their company's invoices (never drafts), open one, and download
it as a PDF. The rules and the sums are in services/statements.py, the PDF in services/invoice_pdf.py.
"""

from __future__ import annotations

import re

from flask import current_app, make_response, request

from portal.extensions import db
from portal.services import clock, policy, statements
from portal.services.invoice_pdf import issuer_from_config, render_invoice_pdf
from portal.web.portal.blueprint import bp
from portal.web.rendering import render
from portal.web.security import current_principal, require

UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def _statement(invoice_id: int) -> statements.InvoiceStatement:
    return statements.customer_invoice(db.session, current_principal(), invoice_id)


@bp.get("/invoices")
@require(policy.may_see_company_invoices)
def invoices():
    """The company's invoices, newest first, with what is outstanding; the filter lives in the URL."""
    status = statements.status_filter(request.args.get("status"))
    page = statements.customer_invoices(db.session, current_principal(), status=status,
                                        page=statements.page_number(request.args.get("page")), today=clock.today())
    return render("portal/invoices/list.html", block="invoice_results", result=page,
                  filters=statements.STATUS_FILTERS)


@bp.get("/invoices/<int:invoice_id>")
@require(policy.may_see_company_invoices)
def show_invoice(invoice_id: int):
    return render("portal/invoices/show.html", statement=_statement(invoice_id))


@bp.get("/invoices/<int:invoice_id>/pdf")
@require(policy.may_see_company_invoices)
def invoice_pdf(invoice_id: int):
    """The invoice as a PDF download, rendered with no access to the network or to files outside static/."""
    # The document kept when it was sent, exactly as the customer received it; older invoices are rendered.
    kept = statements.customer_kept_document(db.session, current_principal(), invoice_id)
    if kept is not None:
        number, body = kept
    else:
        statement = _statement(invoice_id)
        number = statement.invoice.invoice_number
        body = render_invoice_pdf(statement.invoice, statement.lines, issuer_from_config(current_app.config),
                                  static_folder=current_app.static_folder)
    filename = UNSAFE_IN_FILENAME.sub("-", number) + ".pdf"
    response = make_response(body)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
