"""Stored files as downloads: the attachments of tickets, for the portal's and the staff's routes."""

from __future__ import annotations

import io

from flask import abort, current_app, send_file

from portal.extensions import db
from portal.services import attachments, policy
from portal.services.errors import NotFound
from portal.web.security import current_principal


def attachment_storage() -> attachments.Storage:
    return attachments.Storage(current_app.config["ATTACHMENTS_PATH"])


def send_attachment(row):
    """The stored file as a download (never shown inline), under the name it was attached with."""
    try:
        data = attachment_storage().path(row.storage_name).read_bytes()  # at most 10 MB
        response = send_file(io.BytesIO(data), mimetype=row.content_type, as_attachment=True,
                             download_name=row.file_name, max_age=0, conditional=False, etag=False)
    except (FileNotFoundError, NotFound):
        abort(404)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def download_ticket_attachment(ticket, attachment_id: int):
    """One of `ticket`'s files for whoever may see the ticket; a file of an internal note for staff only.

    :raises NotFound: no such file on this ticket (for this reader).
    """
    row = attachments.attachment_of(db.session, ticket, attachment_id,
                                    include_internal=policy.may_see_internal_notes(current_principal()))
    return send_attachment(row)
