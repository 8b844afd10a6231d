"""Supabase Storage (bucket `user-backups`) through its REST API with the service key: signed
upload URLs (PUT) and signed download URLs. Objects live under `{user_id}/...`, matching the
per-user folder policy on storage.objects in the migrations.

Supabase signs upload URLs for a fixed 2 hours and cannot pin an object's size: limit the
bucket's `file_size_limit` in the project; the client checks the sha256 on restore."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from backend.errors import NotFoundError
from backend.settings import Settings
from backend.storage.base import (
    DownloadTarget,
    ObjectInfo,
    StorageError,
    UploadTarget,
    validate_key,
)

SIGNED_UPLOAD_TTL = 2 * 3600


class SupabaseStorage:
    name = "supabase"

    def __init__(
        self, project_url: str, service_key: str, bucket: str, http: httpx.Client | None = None
    ) -> None:
        self.api = project_url.rstrip("/") + "/storage/v1"
        self.bucket = bucket
        self.http = http or httpx.Client(timeout=30)
        self._headers = {"Authorization": f"Bearer {service_key}", "apikey": service_key}

    @classmethod
    def from_settings(cls, settings: Settings) -> SupabaseStorage:
        if not settings.supabase_url or settings.supabase_service_key is None:
            raise RuntimeError(
                "NOJOIN_STORAGE_BACKEND=supabase needs NOJOIN_SUPABASE_URL and "
                "NOJOIN_SUPABASE_SERVICE_KEY."
            )
        return cls(
            settings.supabase_url,
            settings.supabase_service_key.get_secret_value(),
            settings.supabase_bucket,
        )

    def _path(self, key: str) -> str:
        return f"{self.bucket}/{quote(validate_key(key))}"

    def _call(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            return self.http.request(
                method, url, headers={**self._headers, **(headers or {})}, **kwargs
            )
        except httpx.HTTPError as exc:
            raise StorageError(f"Supabase Storage unreachable: {exc}") from exc

    def _ok(self, resp: httpx.Response, what: str) -> dict[str, Any]:
        if resp.status_code >= 400:
            raise StorageError(
                f"Supabase Storage {what} failed: {resp.status_code} {resp.text[:200]}"
            )
        data: dict[str, Any] = resp.json()
        return data

    def presign_upload(
        self,
        key: str,
        *,
        size: int,  # noqa: ARG002 (StorageProvider API: Supabase signs and checks itself)
        sha256: str,  # noqa: ARG002
        expires_in: int,  # noqa: ARG002
        base_url: str,  # noqa: ARG002
    ) -> UploadTarget:
        resp = self._call("POST", f"{self.api}/object/upload/sign/{self._path(key)}")
        data = self._ok(resp, "upload signing")
        return UploadTarget(
            method="PUT",
            url=self.api + str(data["url"]),
            headers={"Content-Type": "application/octet-stream", "x-upsert": "false"},
            expires_at=datetime.now(UTC) + timedelta(seconds=SIGNED_UPLOAD_TTL),
        )

    # base_url: the StorageProvider API (only the local provider's URLs point at this server).
    def presign_download(self, key: str, *, expires_in: int, base_url: str) -> DownloadTarget:  # noqa: ARG002
        resp = self._call(
            "POST", f"{self.api}/object/sign/{self._path(key)}", json={"expiresIn": expires_in}
        )
        data = self._ok(resp, "download signing")
        return DownloadTarget(
            url=self.api + str(data["signedURL"]),
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        )

    def put(self, key: str, data: BinaryIO) -> ObjectInfo:
        def chunks() -> Iterator[bytes]:
            while block := data.read(1024 * 1024):
                yield block

        resp = self._call(
            "POST",
            f"{self.api}/object/{self._path(key)}",
            content=chunks(),
            headers={"Content-Type": "application/octet-stream"},
        )
        self._ok(resp, "upload")
        info = self.stat(key)
        if info is None:
            raise StorageError("The object vanished right after upload.")
        return info

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        url = f"{self.api}/object/authenticated/{self._path(key)}"
        with self.http.stream("GET", url, headers=self._headers) as resp:
            if resp.status_code in (400, 404):
                raise NotFoundError("Object not found.")
            if resp.status_code >= 400:
                raise StorageError(f"Supabase Storage download failed: {resp.status_code}")
            yield from resp.iter_bytes(chunk_size)

    def stat(self, key: str) -> ObjectInfo | None:
        resp = self._call("HEAD", f"{self.api}/object/authenticated/{self._path(key)}")
        if resp.status_code in (400, 404):
            return None
        if resp.status_code >= 400:
            raise StorageError(f"Supabase Storage HEAD failed: {resp.status_code}")
        return ObjectInfo(key=key, size=int(resp.headers.get("content-length", "0")))

    def delete(self, key: str) -> None:
        resp = self._call(
            "DELETE", f"{self.api}/object/{self.bucket}", json={"prefixes": [validate_key(key)]}
        )
        if resp.status_code >= 400 and resp.status_code != 404:
            raise StorageError(f"Supabase Storage delete failed: {resp.status_code}")
