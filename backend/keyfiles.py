"""Secrets generated once and kept in the backend data dir (mode 0600), never logged."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically with mode 0600 (the file is never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load_or_create_secret(path: Path, nbytes: int = 32) -> bytes:
    """Random secret bytes stored in `path`; created on first use."""
    if path.exists():
        data = path.read_bytes()
        if len(data) >= 16:
            return data
    data = secrets.token_bytes(nbytes)
    write_private_file(path, data)
    return data
