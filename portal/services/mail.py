"""Outgoing email: SMTP when MAIL_SERVER is set, else written to the log (a developer clicks the link there).

Tests use the "memory" backend, which keeps the messages in `mailer.outbox`: the one thing we
cannot run here is somebody's SMTP server.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

log = logging.getLogger("portal.mail")


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


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

    def send(self, to: str, subject: str, body: str) -> None:
        subject = " ".join(subject.split())  # a header is one line, whatever a title held
        state = self._state()
        settings = state["settings"]
        mail = Mail(to, subject, body)
        if settings["backend"] == "memory":
            state["outbox"].append(mail)
        elif settings["backend"] == "smtp":
            self._send_smtp(settings, mail)
        else:
            log.info("Email (no MAIL_SERVER set, so it is only logged)\nTo: %s\nSubject: %s\n\n%s", to, subject, body)

    @staticmethod
    def _send_smtp(settings: dict, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = settings["sender"]
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        with smtplib.SMTP(settings["server"], settings["port"], timeout=20) as smtp:
            if settings["use_tls"]:
                smtp.starttls(context=ssl.create_default_context())
            if settings["username"]:
                smtp.login(settings["username"], settings["password"] or "")
            smtp.send_message(message)
