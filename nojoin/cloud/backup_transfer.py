"""Moving a backup file to and from the URLs the backend signed: plain HTTP, with progress and
cancel, per the backups API contract (PUT of the bytes, or a POST form with the given fields);
a download is hashed as it arrives and refused on a checksum mismatch (Qt-free, blocking).
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import httpx

from nojoin.cloud.api_client import UploadTarget, error_detail
from nojoin.cloud.backup_archive import CHUNK, Archive, check_cancel, report
from nojoin.cloud.errors import BackupError, OfflineError
from nojoin.processing.contract import CancelToken, ProgressCallback

# httpx logs every request line at INFO, and ours carry signed (secret, short-lived) URLs.
logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").level, logging.WARNING))


class _ProgressReader(io.RawIOBase):
    """A file wrapper that reports how much has been read (for POST form uploads)."""

    def __init__(
        self,
        fh: IO[bytes],
        total: int,
        progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> None:
        self._fh = fh
        self._total = total
        self._done = 0
        self._progress = progress
        self._cancel = cancel

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        check_cancel(self._cancel)
        data = self._fh.read(size)
        self._done += len(data)
        report(self._progress, "upload", self._done, self._total)
        return data


def upload(
    http: httpx.Client,
    archive: Archive,
    target: UploadTarget,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Send `archive` to the signed upload `target`."""
    try:
        if target.method == "PUT":

            def chunks() -> Iterator[bytes]:
                done = 0
                with archive.path.open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        check_cancel(cancel)
                        done += len(chunk)
                        report(progress, "upload", done, archive.size)
                        yield chunk

            response = http.put(
                target.url,
                content=chunks(),
                headers={
                    "Content-Type": "application/octet-stream",
                    **target.headers,
                    "Content-Length": str(archive.size),
                },
            )
        else:
            with archive.path.open("rb") as fh:
                reader = cast(IO[bytes], _ProgressReader(fh, archive.size, progress, cancel))
                response = http.post(
                    target.url,
                    data=target.fields,
                    files={"file": (archive.name, reader, "application/gzip")},
                    headers=target.headers,
                )
    except httpx.TransportError as exc:
        raise OfflineError(
            "The upload was interrupted: Nojoin Cloud cannot be reached. Check your "
            "connection and back up again."
        ) from exc
    if not response.is_success:
        raise BackupError(
            f"Nojoin Cloud refused the upload (HTTP {response.status_code}"
            f"{': ' + error_detail(response) if error_detail(response) else ''}). Try again; if it "
            "keeps failing, back up without audio."
        )


def download(
    http: httpx.Client,
    url: str,
    dest: Path,
    *,
    size: int,
    sha256: str,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Fetch the signed download `url` into `dest`; BackupError unless its SHA-256 is
    `sha256` (`size`: the listed size, for progress when the server sends no length)."""
    digest = hashlib.sha256()
    done = 0
    try:
        with http.stream("GET", url) as response:
            if not response.is_success:
                response.read()
                raise BackupError(
                    f"Cannot download the backup (HTTP {response.status_code}"
                    f"{': ' + error_detail(response) if error_detail(response) else ''}). Try again."
                )
            total = int(response.headers.get("Content-Length") or size)
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    check_cancel(cancel)
                    digest.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    report(progress, "download", done, total)
    except httpx.TransportError as exc:
        raise OfflineError(
            "The download was interrupted: Nojoin Cloud cannot be reached. Your library "
            "was not changed."
        ) from exc
    if digest.hexdigest() != sha256.lower():
        raise BackupError(
            "The downloaded backup is damaged (its checksum does not match), so it was not "
            "restored. Your library was not changed. Try again or pick another backup."
        )
