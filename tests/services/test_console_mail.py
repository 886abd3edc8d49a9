"""The log mail backend (no MAIL_SERVER: the demo) shows a mail as it would be sent: its threading
headers and text, so a developer can answer it from a mail client by hand."""

from __future__ import annotations

import logging

from portal.extensions import mailer
from portal.services.mail import Mail


def test_the_log_backend_shows_the_threading_headers(app, caplog):
    with app.app_context(), caplog.at_level(logging.INFO, logger="portal.mail"):
        settings = app.extensions["mailer"]["settings"]
        backend, settings["backend"] = settings["backend"], "log"
        try:
            mailer.send_mail(Mail(to="sarah@example.com", subject="[TKT-2026-000001] New reply: Printer",
                                  body="Hello", in_reply_to="<root@techserv.example>",
                                  references=("<root@techserv.example>",)))
        finally:
            settings["backend"] = backend
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "To: sarah@example.com" in logged and "Subject: [TKT-2026-000001] New reply: Printer" in logged
    assert "Message-ID: <" in logged and "In-Reply-To: <root@techserv.example>" in logged
    assert "Hello" in logged
