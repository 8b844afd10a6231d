"""Local-file storage: objects under a folder, reached through HMAC-signed, expiring URLs
served by this backend (`backend.storage.endpoints`). The embedded default."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

import anyio

from backend.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PayloadTooLargeError,
    ValidationFailedError,
)
from backend.storage.base import DownloadTarget, ObjectInfo, UploadTarget, validate_key

ROUTE_PREFIX = "/api/v1/storage/objects"


class LocalStorage:
    name = "local"

    def __init__(self, root: Path, secret: bytes) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(exist_ok=True)
        self._secret = secret

    # --- paths and signatures ---

    def path_for(self, key: str) -> Path:
        validate_key(key)
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise BadRequestError("Invalid object key.", code="invalid_key")
        return path

    def _signature(self, op: str, key: str, exp: int, size: int, sha256: str) -> str:
        message = f"{op}\n{key}\n{exp}\n{size}\n{sha256}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _url(self, base_url: str, key: str, params: dict[str, str | int]) -> str:
        return f"{base_url.rstrip('/')}{ROUTE_PREFIX}/{quote(key)}?{urlencode(params)}"

    def check_signature(
        self, op: str, key: str, *, exp: int, size: int, sha256: str, sig: str
    ) -> None:
        """Raise 403 unless `sig` is this server's signature of the request and not expired."""
        validate_key(key)
        expected = self._signature(op, key, exp, size, sha256)
        if not hmac.compare_digest(expected, sig):
            raise ForbiddenError("Invalid or tampered link signature.", code="invalid_signature")
        if exp < time.time():
            raise ForbiddenError("This link expired; request a new one.", code="link_expired")

    # --- StorageProvider ---

    def presign_upload(
        self, key: str, *, size: int, sha256: str, expires_in: int, base_url: str
    ) -> UploadTarget:
        validate_key(key)
        exp = int(time.time()) + expires_in
        params: dict[str, str | int] = {
            "exp": exp,
            "size": size,
            "sha256": sha256,
            "sig": self._signature("PUT", key, exp, size, sha256),
        }
        return UploadTarget(
            method="PUT",
            url=self._url(base_url, key, params),
            expires_at=datetime.fromtimestamp(exp, UTC),
            headers={"Content-Type": "application/octet-stream"},
        )

    def presign_download(self, key: str, *, expires_in: int, base_url: str) -> DownloadTarget:
        validate_key(key)
        exp = int(time.time()) + expires_in
        params: dict[str, str | int] = {"exp": exp, "sig": self._signature("GET", key, exp, 0, "")}
        return DownloadTarget(
            url=self._url(base_url, key, params), expires_at=datetime.fromtimestamp(exp, UTC)
        )

    def put(self, key: str, data: BinaryIO) -> ObjectInfo:
        path = self.path_for(key)
        tmp = self._tmp / secrets.token_hex(16)
        try:
            with tmp.open("wb") as out:
                shutil.copyfileobj(data, out, 1024 * 1024)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return ObjectInfo(key=key, size=path.stat().st_size)

    async def receive(
        self, key: str, chunks: AsyncIterator[bytes], *, size: int, sha256: str
    ) -> ObjectInfo:
        """Stream an upload to disk (never whole in memory); keep it only if it has exactly
        `size` bytes and the declared SHA-256. An existing object is never replaced."""
        path = self.path_for(key)
        if path.exists():
            raise ConflictError("This object was already uploaded.", code="already_uploaded")
        tmp = self._tmp / secrets.token_hex(16)
        digest = hashlib.sha256()
        received = 0
        try:
            async with await anyio.open_file(tmp, "wb") as out:
                async for chunk in chunks:
                    received += len(chunk)
                    if received > size:
                        raise PayloadTooLargeError(
                            f"The upload is larger than the declared {size} bytes.",
                            code="upload_too_large",
                        )
                    digest.update(chunk)
                    await out.write(chunk)
            if received != size:
                raise BadRequestError(
                    f"Upload incomplete: received {received} of {size} bytes.",
                    code="upload_incomplete",
                )
            if not hmac.compare_digest(digest.hexdigest(), sha256):
                raise ValidationFailedError(
                    "The uploaded bytes do not match the declared sha256.",
                    code="checksum_mismatch",
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            # link + unlink: atomic "create if absent", so two racing uploads cannot both win.
            try:
                os.link(tmp, path)
            except FileExistsError as exc:
                raise ConflictError(
                    "This object was already uploaded.", code="already_uploaded"
                ) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return ObjectInfo(key=key, size=received)

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        path = self.path_for(key)
        try:
            fh = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError("Object not found.") from exc
        with fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def stat(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        try:
            return ObjectInfo(key=key, size=path.stat().st_size)
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)
