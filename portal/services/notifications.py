"""Emails to people about what happened to their tickets and projects.

The messages are built here from the rows; the caller sends them with `send` once the change has
committed (a rolled-back change emails nobody). A contact is emailed only when their
communication preference is email: phone and SMS contacts are called by the technician or the
project manager. Internal notes never reach a message.
"""

from __future__ import annotations

import logging

from portal.models import CommunicationPreference
from portal.services.mail import Mail

log = logging.getLogger("portal.notifications")


def wants_email(contact) -> bool:
    return contact is not None and contact.communication_preference == CommunicationPreference.EMAIL


def send(messages: list[Mail]) -> None:
    """Send after commit; a mail server that fails is logged, never an error page for a saved change."""
    from portal.extensions import mailer

    for message in messages:
        try:
            mailer.send(message.to, message.subject, message.body)
        except Exception:  # noqa: BLE001 - SMTP can fail in many ways; the change itself is saved
            log.exception("Could not email %s about %r", message.to, message.subject)


# --- tickets ---------------------------------------------------------------------------------


# --- projects --------------------------------------------------------------------------------
