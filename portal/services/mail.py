"""Outgoing email: SMTP when MAIL_SERVER is set, else written to the log (a developer clicks the link there).

Tests use the "memory" backend, which keeps the messages in `mailer.outbox`: the one thing we
cannot run here is somebody's SMTP server.

Every message has a plain-text and an HTML part and a Message-ID; a mail about a ticket carries
In-Reply-To / References (services/notifications.thread_mail) and, in its text, the "reply above
this line" marker, so a customer's answer threads back to the ticket (services/mail_in.py). Mails
the portal writes by itself carry `Auto-Submitted` (RFC 3834), so well-behaved auto-responders
stay quiet and no loop starts.
"""

from __future__ import annotations

import html
import logging
import re
import smtplib
import ssl
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from portal.services import clock

log = logging.getLogger("portal.mail")


REPLY_MARKER = "##- Please type your reply above this line -##"
_URL = re.compile(r"https?://[^\s<>\u201d\")]+")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    ticket_id: int | None = None  # a mail about a ticket: threaded, and answerable by email
    auto_submitted: str | None = "auto-generated"  # None for a person's words (a technician's reply)
    reply_marker: bool = False
    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = field(default_factory=tuple)


def new_message_id(sender: str) -> str:
    """A fresh <...@domain> in the sender's domain (so it is recognised as ours when it comes back)."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return make_msgid(idstring=uuid.uuid4().hex[:12], domain=domain)


def text_of(mail: Mail) -> str:
    return f"{REPLY_MARKER}\n\n{mail.body}" if mail.reply_marker else mail.body


def html_of(mail: Mail) -> str:
    """The HTML part: the text's paragraphs, links clickable, everything else escaped."""
    def paragraph(text: str) -> str:
        escaped = html.escape(text)
        escaped = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        return "<p>" + escaped.replace("\n", "<br>\n") + "</p>"

    parts = [paragraph(p) for p in mail.body.split("\n\n") if p.strip()]
    if mail.reply_marker:
        parts.insert(0, f'<p style="color:#666;font-size:12px">{html.escape(REPLY_MARKER)}</p>')
    return ("<!doctype html><html><body style=\"font-family:sans-serif;line-height:1.4\">\n"
            + "\n".join(parts) + "\n</body></html>\n")


def email_message(mail: Mail, sender: str) -> EmailMessage:
    """The MIME message: text and HTML alternatives, Message-ID, threading and Auto-Submitted headers."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(clock.now())
    message["Message-ID"] = mail.message_id or new_message_id(sender)
    if mail.in_reply_to:
        message["In-Reply-To"] = mail.in_reply_to
    if mail.references:
        message["References"] = " ".join(mail.references)
    if mail.auto_submitted:
        message["Auto-Submitted"] = mail.auto_submitted
        message["X-Auto-Response-Suppress"] = "All"  # Exchange's word for "no out-of-office to this"
    message.set_content(text_of(mail))
    message.add_alternative(html_of(mail), subtype="html")
    return message


class Mailer:
    """Bound to each app by init_app; `send` uses the settings of the app in context."""

    def init_app(self, app) -> None:
        config = app.config
        settings = {
            "server": config.get("MAIL_SERVER"),
            "port": int(config.get("MAIL_PORT") or 587),
            "username": config.get("MAIL_USERNAME"),
            "password": config.get("MAIL_PASSWORD"),
            "use_tls": str(config.get("MAIL_USE_TLS", "1")) not in ("0", "false", "False"),
            "sender": config.get("MAIL_FROM") or "TechServ Portal <portal@localhost>",
        }
        settings["backend"] = config.get("MAIL_BACKEND") or ("smtp" if settings["server"] else "log")
        app.extensions["mailer"] = {"settings": settings, "outbox": []}

    @staticmethod
    def _state() -> dict:
        from flask import current_app

        return current_app.extensions["mailer"]

    @property
    def outbox(self) -> list[Mail]:
        """Mails sent by the app in context with the "memory" backend (tests)."""
        return self._state()["outbox"]

    @property
    def sender(self) -> str:
        return self._state()["settings"]["sender"]

    def send(self, to: str, subject: str, body: str) -> None:
        self.send_mail(Mail(to, subject, body))

    def send_mail(self, mail: Mail) -> None:
        """Send one mail (a Message-ID is made here when the mail has none)."""
        from dataclasses import replace

        state = self._state()
        settings = state["settings"]
        # A header is one line, whatever a title held.
        mail = replace(mail, subject=" ".join(mail.subject.split()),
                       message_id=mail.message_id or new_message_id(settings["sender"]))
        if settings["backend"] == "memory":
            state["outbox"].append(mail)
        elif settings["backend"] == "smtp":
            self._send_smtp(settings, mail)
        else:
            # The headers a mail client would thread by, then the text part, as they would be sent.
            message = email_message(mail, settings["sender"])
            headers = "\n".join(f"{name}: {message[name]}" for name in
                                 ("From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Auto-Submitted")
                                 if message[name])
            log.info("Email (no MAIL_SERVER set, so it is only logged)\n%s\n\n%s", headers, text_of(mail))

    @staticmethod
    def _send_smtp(settings: dict, mail: Mail) -> None:
        message = email_message(mail, settings["sender"])
        with smtplib.SMTP(settings["server"], settings["port"], timeout=20) as smtp:
            if settings["use_tls"]:
                smtp.starttls(context=ssl.create_default_context())
            if settings["username"]:
                smtp.login(settings["username"], settings["password"] or "")
            smtp.send_message(message)
