"""Where the built-in auth server's mails go. There is no mail server here: the outbox mailer
stores mails in a table (read by an operator or a test), the file mailer writes one JSON file
per mail (mode 0600) into <data_dir>/mail. A real SMTP mailer would implement the same
`Mailer` protocol."""

from __future__ import annotations

import json
import logging
import secrets
import time
from pathlib import Path
from typing import Protocol

from backend.auth.repository import AuthRepository
from backend.db import Connection
from backend.keyfiles import write_private_file

logger = logging.getLogger(__name__)


class Mailer(Protocol):
    def send(self, conn: Connection, *, recipient: str, subject: str, body: str) -> None:
        """Deliver (or queue, in the caller's transaction) one mail."""
        ...


class OutboxMailer:
    """Queues mails in nojoin_auth.mail_outbox, in the same transaction as the token."""

    def send(self, conn: Connection, *, recipient: str, subject: str, body: str) -> None:
        AuthRepository.from_session(conn).queue_mail(recipient, subject, body)
        logger.info("Queued mail %r in the outbox", subject)


class FileMailer:
    """Writes each mail to <folder>/<timestamp>-<random>.json (owner-only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(
        self,
        conn: Connection,  # noqa: ARG002 (Mailer API: the outbox mailer writes in it)
        *,
        recipient: str,
        subject: str,
        body: str,
    ) -> None:
        name = f"{time.time_ns()}-{secrets.token_hex(4)}.json"
        payload = {"to": recipient, "subject": subject, "body": body}
        write_private_file(self.folder / name, json.dumps(payload, indent=2).encode())
        logger.info("Wrote mail %r to %s", subject, self.folder / name)
