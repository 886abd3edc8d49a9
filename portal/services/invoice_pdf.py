"""An invoice as a PDF: the Jinja template templates/pdf/invoice.html rendered by WeasyPrint.

HTML-to-PDF exporters fetch whatever the document points at, and osTicket's and Invoice Ninja's
were exploited through that (server-side requests to internal hosts, local files read into the
PDF). Here the renderer gets a URL fetcher that serves only regular files inside the app's own
static folder and refuses everything else: http, https, ftp, data, any other scheme, and every
file outside static/ (after resolving `..` and symbolic links). The customer's text reaches the
template only as escaped text, and fonts come from the local fontconfig, never the network.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal.models import Invoice, InvoiceLineItem
from portal.services.statements import LINE_TYPE_LABELS, STATUS_LABELS, invoice_totals

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "static"
TEMPLATE_DIR = ROOT / "templates"
TEMPLATE = "pdf/invoice.html"
MAX_RESOURCE_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class Issuer:
    """Who sends the invoice (TechServ), from the INVOICE_ISSUER_* settings."""

    name: str
    address_lines: tuple[str, ...]
    email: str


def issuer_from_config(config: Mapping) -> Issuer:
    """The issuer from the app's settings; INVOICE_ISSUER_ADDRESS separates its lines with "|" or newlines."""
    raw = str(config.get("INVOICE_ISSUER_ADDRESS") or "")
    lines = tuple(part.strip() for part in raw.replace("\r", "").replace("|", "\n").split("\n") if part.strip())
    return Issuer(name=str(config.get("INVOICE_ISSUER_NAME") or "TechServ Solutions"),
                  address_lines=lines, email=str(config.get("INVOICE_ISSUER_EMAIL") or ""))


class RefusedResource(ValueError):
    """The PDF asked for something outside the static folder (WeasyPrint skips it and logs why)."""


class StaticOnlyFetcher:
    """A WeasyPrint URL fetcher that answers only `file:` URLs of regular files inside `static_folder`."""

    def __init__(self, static_folder: str | Path) -> None:
        self.root = Path(static_folder).resolve(strict=True)

    @property
    def base_url(self) -> str:
        """Relative URLs in the template (css/invoice-pdf.css) resolve against the static folder."""
        return self.root.as_uri() + "/"

    def path_for(self, url: str) -> Path:
        """The file inside the static folder that `url` names.

        :raises RefusedResource: another scheme or host, or a file outside the static folder.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "file":
            raise RefusedResource(f"only the app's static files may be used in a PDF, not {parts.scheme or 'a relative'} URLs")
        if parts.netloc not in ("", "localhost"):
            raise RefusedResource("file URLs on other hosts are refused")
        raw_path = url2pathname(unquote(parts.path))
        if "\x00" in raw_path:
            raise RefusedResource("a file name with a NUL character is refused")
        try:
            path = Path(raw_path).resolve(strict=True)
        except (OSError, RuntimeError):
            raise RefusedResource("no such static file") from None
        if not path.is_relative_to(self.root) or not path.is_file():
            raise RefusedResource("only files inside the app's static folder may be used in a PDF")
        return path

    def __call__(self, url: str, *args, **kwargs):
        path = self.path_for(url)
        if path.stat().st_size > MAX_RESOURCE_BYTES:
            raise RefusedResource("static file too large for a PDF")
        body = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return _response(path.as_uri(), body, content_type)

    fetch = __call__


def _response(url: str, body: bytes, content_type: str):
    try:
        from weasyprint.urls import URLFetcherResponse
    except ImportError:  # WeasyPrint before 66 takes a dict
        return {"string": body, "mime_type": content_type, "redirected_url": url}
    return URLFetcherResponse(url, body, {"Content-Type": content_type})


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Not Flask's environment: services stay free of Flask, and the PDF needs no request.
    return Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=select_autoescape(default=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def invoice_html(invoice: Invoice, lines: list[InvoiceLineItem], issuer: Issuer) -> str:
    """The invoice as the HTML document the PDF is made from."""
    return _environment().get_template(TEMPLATE).render(
        invoice=invoice, customer=invoice.customer, lines=lines, totals=invoice_totals(invoice, lines),
        status_label=STATUS_LABELS.get(invoice.invoice_status, invoice.invoice_status.value.capitalize()),
        line_labels=LINE_TYPE_LABELS, issuer=issuer)


def render_invoice_pdf(invoice: Invoice, lines: list[InvoiceLineItem], issuer: Issuer, *,
                       static_folder: str | Path = STATIC_DIR) -> bytes:
    """The invoice as PDF bytes; the renderer may read only files inside `static_folder`."""
    from weasyprint import HTML  # heavy import, only where a PDF is made

    fetcher = StaticOnlyFetcher(static_folder)
    document = HTML(string=invoice_html(invoice, lines, issuer), base_url=fetcher.base_url, url_fetcher=fetcher)
    return document.write_pdf()
