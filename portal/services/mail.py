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
    def __init__(self) -> None:
        self.backend = "log"
        self.settings: dict = {}
        self.outbox: list[Mail] = []

    def init_app(self, app) -> None:
        config = app.config
        self.settings = {
            "server": config.get("MAIL_SERVER"),
            "port": int(config.get("MAIL_PORT") or 587),
            "username": config.get("MAIL_USERNAME"),
            "password": config.get("MAIL_PASSWORD"),
            "use_tls": str(config.get("MAIL_USE_TLS", "1")) not in ("0", "false", "False"),
            "sender": config.get("MAIL_FROM") or "TechServ Portal <portal@localhost>",
        }
        self.backend = config.get("MAIL_BACKEND") or ("smtp" if self.settings["server"] else "log")
        app.extensions["mailer"] = self

    def send(self, to: str, subject: str, body: str) -> None:
        mail = Mail(to, subject, body)
        if self.backend == "memory":
            self.outbox.append(mail)
        elif self.backend == "smtp":
            self._send_smtp(mail)
        else:
            log.info("Email (no MAIL_SERVER set, so it is only logged)\nTo: %s\nSubject: %s\n\n%s", to, subject, body)

    def _send_smtp(self, mail: Mail) -> None:
        message = EmailMessage()
        message["From"] = self.settings["sender"]
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        with smtplib.SMTP(self.settings["server"], self.settings["port"], timeout=20) as smtp:
            if self.settings["use_tls"]:
                smtp.starttls(context=ssl.create_default_context())
            if self.settings["username"]:
                smtp.login(self.settings["username"], self.settings["password"] or "")
            smtp.send_message(message)
