"""Ticket attachments: checked, stored outside static/ under random names, read back only for
someone who may see the ticket.

A file is accepted when its name's extension is on the allow-list AND its content is what that
extension claims (magic bytes through the `filetype` library; text is valid UTF-8 without NUL
bytes and does not look like HTML or SVG). The stored type comes from that check, never from
the browser. SVG and HTML are never accepted: a browser would run their scripts.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import filetype
import sqlalchemy as sa
from sqlalchemy import event, orm

from portal.models import TicketAttachment, TicketComment
from portal.services import policy
from portal.services.errors import Invalid, NotFound

MAX_BYTES = 10 * 1024 * 1024
MAX_FILES = 5
# extension -> (content type we store and serve, what `filetype` may find in the content; None: text)
ALLOWED: dict[str, tuple[str, frozenset[str] | None]] = {
    "png": ("image/png", frozenset({"png"})),
    "jpg": ("image/jpeg", frozenset({"jpg"})),
    "jpeg": ("image/jpeg", frozenset({"jpg"})),
    "gif": ("image/gif", frozenset({"gif"})),
    "webp": ("image/webp", frozenset({"webp"})),
    "bmp": ("image/bmp", frozenset({"bmp"})),
    "heic": ("image/heic", frozenset({"heic"})),
    "pdf": ("application/pdf", frozenset({"pdf"})),
    "txt": ("text/plain", None),
    "log": ("text/plain", None),
    "csv": ("text/csv", None),
    "json": ("application/json", None),
    "doc": ("application/msword", frozenset({"doc"})),
    "xls": ("application/vnd.ms-excel", frozenset({"xls", "doc"})),  # both are OLE2 containers
    "ppt": ("application/vnd.ms-powerpoint", frozenset({"ppt", "doc"})),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", frozenset({"docx", "zip"})),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", frozenset({"xlsx", "zip"})),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation",
             frozenset({"pptx", "zip"})),
    "odt": ("application/vnd.oasis.opendocument.text", frozenset({"odt", "zip"})),
    "ods": ("application/vnd.oasis.opendocument.spreadsheet", frozenset({"ods", "zip"})),
    "odp": ("application/vnd.oasis.opendocument.presentation", frozenset({"odp", "zip"})),
    "rtf": ("application/rtf", frozenset({"rtf"})),
    # An Office or OpenDocument file is a ZIP too (filetype names the first by what it finds inside).
    "zip": ("application/zip", frozenset({"zip", "docx", "xlsx", "pptx", "odt", "ods", "odp", "epub"})),
}
ACCEPT = ",".join(f".{extension}" for extension in ALLOWED)  # for <input type=file accept=...>
# A request over the limit is refused before it is read: nothing typed arrives to be kept.
TOO_LARGE = f"The files were too large to send: attach at most {MAX_FILES} files of 10 MB each."
TOO_LARGE_FOR_NEW_TICKET = TOO_LARGE + " Nothing arrived, so enter the ticket again and choose smaller files."
TOO_LARGE_FOR_REPLY = TOO_LARGE + " Nothing arrived, so write the reply again and choose smaller files."
KINDS_IN_WORDS = "images (PNG, JPEG, GIF, WebP), PDF, text and log files, CSV, Office documents and ZIP"
MARKUP = re.compile(rb"^\s*(<\?xml|<!doctype|<html|<svg|<script|<head|<body|<iframe)", re.IGNORECASE)


@dataclass(frozen=True)
class Upload:
    """A file as the web layer received it: the name the browser sent and a readable stream."""

    file_name: str
    stream: object  # has .read(n)


@dataclass(frozen=True)
class CheckedFile:
    file_name: str
    content_type: str
    data: bytes


def clean_file_name(raw: str | None) -> str:
    """The last part of the name, without control characters or path separators, at most 255 characters."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".")
    if len(name) > 255:
        stem, dot, extension = name.rpartition(".")
        name = (stem[: 255 - len(extension) - 1] + dot + extension) if dot and len(extension) < 20 else name[:255]
    return name or "attachment"


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not MARKUP.match(data.removeprefix(b"\xef\xbb\xbf"))


def check(upload: Upload) -> CheckedFile:
    """Read and check one file.

    :raises Invalid: too big, empty, a type not on the list, or content that is not what the name says.
    """
    name = clean_file_name(upload.file_name)
    data = upload.stream.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise Invalid(f"{name} is larger than 10 MB. Attach a smaller file (a ZIP of it, or a part).", "attachments")
    if not data:
        raise Invalid(f"{name} is empty.", "attachments")
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension not in ALLOWED:
        raise Invalid(f"{name}: this kind of file cannot be attached. Attach {KINDS_IN_WORDS}.", "attachments")
    content_type, kinds = ALLOWED[extension]
    if kinds is None:
        ok = _is_text(data)
    else:
        found = filetype.guess(data[:8192])
        ok = found is not None and found.extension in kinds
    if not ok:
        raise Invalid(f"{name} is not a real .{extension} file (its content says otherwise).", "attachments")
    return CheckedFile(name, content_type, data)


def check_all(uploads: list[Upload]) -> list[CheckedFile]:
    """:raises Invalid: more than MAX_FILES files, or one of them is refused (the first reason)."""
    uploads = [u for u in uploads if u.file_name]
    if len(uploads) > MAX_FILES:
        raise Invalid(f"Attach at most {MAX_FILES} files at once.", "attachments")
    return [check(upload) for upload in uploads]


class Storage:
    """Files on disk under random names, two levels of folders by the name's first characters."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, storage_name: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", storage_name):
            raise NotFound("No such file.")
        return self.root / storage_name[:2] / storage_name

    def write(self, data: bytes) -> str:
        name = secrets.token_hex(16)
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".part")
        temporary.write_bytes(data)
        os.replace(temporary, target)
        return name


def attach(session, storage: Storage, principal: policy.Principal, ticket, files: list[CheckedFile], *,
           comment: TicketComment | None = None) -> list[TicketAttachment]:
    """Store checked files and record them on the ticket (and the reply they came with).

    The caller commits. If the transaction rolls back instead, for whatever reason, the files
    written here are deleted again (see the session listeners below): no orphan file stays.
    """
    rows = []
    written = session.info.setdefault("stored_files", [])
    for checked in files:
        storage_name = storage.write(checked.data)
        written.append(storage.path(storage_name))
        row = TicketAttachment(
            ticket_id=ticket.ticket_id, comment_id=comment.comment_id if comment is not None else None,
            uploaded_by_contact_id=principal.contact_id, uploaded_by_employee_id=principal.employee_id,
            file_name=checked.file_name, content_type=checked.content_type, size_bytes=len(checked.data),
            sha256=hashlib.sha256(checked.data).hexdigest(), storage_name=storage_name)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows


def open_ticket_with_files(session, storage: Storage, principal: policy.Principal, data, uploads: list[Upload], *,
                           now=None):
    """Open a ticket with its attachments. The files are checked first: a refused file opens no
    ticket (and uses up no number), and the message names what is wrong with the other fields too.

    :raises Invalid: a field or a file is wrong (every wrong field named).
    :raises Forbidden: the principal may not open tickets.
    """
    from portal.services import tickets

    try:
        files = check_all(uploads)
    except Invalid as error:
        raise Invalid(error.message, "attachments",
                      {**tickets.ticket_field_errors(data), "attachments": error.message}) from None
    ticket = tickets.open_ticket(session, principal, data, now=now)
    attach(session, storage, principal, ticket, files)
    return ticket


def reply_with_files(session, storage: Storage, principal: policy.Principal, ticket, body: str,
                     uploads: list[Upload], *, now=None) -> TicketComment:
    """A public reply with its attachments (the files are checked before anything is written).

    :raises Invalid: an empty message, a closed ticket, or a refused file.
    :raises Forbidden: the principal may not reply to this ticket.
    """
    from portal.services import tickets

    files = check_all(uploads)
    comment = tickets.add_comment(session, principal, ticket, body, now=now)
    attach(session, storage, principal, ticket, files, comment=comment)
    return comment


@event.listens_for(orm.Session, "after_commit")
def _keep_stored_files(session) -> None:
    if not session.in_nested_transaction():  # the whole transaction (this also fires for a savepoint)
        session.info.pop("stored_files", None)


@event.listens_for(orm.Session, "after_soft_rollback")
def _remove_stored_files(session, previous_transaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint inside it
        for path in session.info.pop("stored_files", []):
            path.unlink(missing_ok=True)


def _visible(ticket_id: int, include_internal: bool):
    query = (sa.select(TicketAttachment)
             .outerjoin(TicketComment, TicketComment.comment_id == TicketAttachment.comment_id)
             .where(TicketAttachment.ticket_id == ticket_id))
    if not include_internal:
        query = query.where(sa.or_(TicketAttachment.comment_id.is_(None), TicketComment.is_internal.is_(False)))
    return query


def ticket_attachments(session, ticket_id: int, *, include_internal: bool) -> list[TicketAttachment]:
    """A ticket's attachments, oldest first; those of internal notes only when asked (staff)."""
    return list(session.scalars(_visible(ticket_id, include_internal)
                                .order_by(TicketAttachment.created_at, TicketAttachment.attachment_id)))


def attachment_of(session, ticket, attachment_id: int, *, include_internal: bool) -> TicketAttachment:
    """:raises NotFound: no such attachment on this ticket (or one of an internal note, for a contact)."""
    row = session.scalar(_visible(ticket.ticket_id, include_internal)
                         .where(TicketAttachment.attachment_id == attachment_id))
    if row is None:
        raise NotFound("No such file.")
    return row
