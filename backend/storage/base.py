"""The storage-provider interface shared by backups and jobs.

Object keys are always built by the server (`{user_id}/...`) and checked by `validate_key`
before any provider sees them: no absolute paths, no `..`, no NUL or backslash, no empty
segments.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Literal, Protocol

from backend.errors import BadRequestError, ServiceUnavailableError

_SEGMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_KEY_LENGTH = 512


class StorageError(ServiceUnavailableError):
    """The storage service failed (network, permissions): 503, not the client's fault."""


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative object key, else raise BadRequestError (400)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise BadRequestError("Invalid object key.", code="invalid_key")
    if "\x00" in key or "\\" in key or key.startswith("/"):
        raise BadRequestError("Invalid object key.", code="invalid_key")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT_RE.match(segment):
            raise BadRequestError("Invalid object key.", code="invalid_key")
    return key


@dataclass(frozen=True)
class UploadTarget:
    """Where and how the client uploads: PUT the raw bytes, or POST a form with `fields`."""

    method: Literal["PUT", "POST"]
    url: str
    expires_at: datetime
    fields: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DownloadTarget:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class StorageProvider(Protocol):
    """Small, synchronous interface; implementations: local, s3, supabase."""

    name: str

    def presign_upload(
        self, key: str, *, size: int, sha256: str, expires_in: int, base_url: str
    ) -> UploadTarget:
        """A URL the client can upload exactly `size` bytes to, valid for `expires_in` s.

        `base_url` is this server's public URL (only used by providers that serve objects
        themselves)."""
        ...

    def presign_download(self, key: str, *, expires_in: int, base_url: str) -> DownloadTarget: ...

    def put(self, key: str, data: BinaryIO) -> ObjectInfo:
        """Store a stream under `key` (server-side upload)."""
        ...

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """Stream an object's bytes; raises NotFoundError when missing."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """Size of an object, or None when it does not exist (yet)."""
        ...

    def delete(self, key: str) -> None:
        """Delete an object; deleting a missing object is not an error."""
        ...
