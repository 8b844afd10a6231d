"""S3-compatible storage (AWS, MinIO, R2...): presigned POST uploads whose policy pins the exact
size, presigned GET downloads, server-side streaming put/get."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from backend.errors import NotFoundError
from backend.settings import Settings
from backend.storage.base import (
    DownloadTarget,
    ObjectInfo,
    StorageError,
    UploadTarget,
    validate_key,
)

logger = logging.getLogger(__name__)


class S3Storage:
    name = "s3"

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=(
                settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None
            ),
            aws_secret_access_key=(
                settings.s3_secret_access_key.get_secret_value()
                if settings.s3_secret_access_key
                else None
            ),
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
        return cls(client, settings.s3_bucket)

    def presign_upload(
        self,
        key: str,
        *,
        size: int,
        sha256: str,
        expires_in: int,
        base_url: str,  # noqa: ARG002 (StorageProvider API: only local URLs need it)
    ) -> UploadTarget:
        validate_key(key)
        fields = {"Content-Type": "application/octet-stream", "x-amz-meta-sha256": sha256}
        conditions: list[Any] = [
            ["content-length-range", size, size],
            {"Content-Type": "application/octet-stream"},
            {"x-amz-meta-sha256": sha256},
        ]
        try:
            post = self.client.generate_presigned_post(
                Bucket=self.bucket,
                Key=key,
                Fields=fields,
                Conditions=conditions,
                ExpiresIn=expires_in,
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"Could not presign the upload: {exc}") from exc
        return UploadTarget(
            method="POST",
            url=post["url"],
            fields={k: str(v) for k, v in post["fields"].items()},
            expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
        )

    # base_url: the StorageProvider API (only the local provider's URLs point at this server).
    def presign_download(self, key: str, *, expires_in: int, base_url: str) -> DownloadTarget:  # noqa: ARG002
        validate_key(key)
        url = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )
        return DownloadTarget(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=expires_in))

    def put(self, key: str, data: BinaryIO) -> ObjectInfo:
        validate_key(key)
        try:
            self.client.upload_fileobj(data, self.bucket, key)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"Upload to S3 failed: {exc}") from exc
        info = self.stat(key)
        if info is None:
            raise StorageError("The object vanished right after upload.")
        return info

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        validate_key(key)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                raise NotFoundError("Object not found.") from exc
            raise StorageError(f"Download from S3 failed: {exc}") from exc
        body = obj["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def stat(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise StorageError(f"S3 HEAD failed: {exc}") from exc
        return ObjectInfo(key=key, size=int(head["ContentLength"]))

    def delete(self, key: str) -> None:
        validate_key(key)
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if not _is_missing(exc):
                raise StorageError(f"S3 delete failed: {exc}") from exc


def _is_missing(exc: ClientError) -> bool:
    code = str(exc.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")
