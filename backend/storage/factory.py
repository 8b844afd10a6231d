"""Pick the storage provider from settings."""

from __future__ import annotations

from backend.keyfiles import load_or_create_secret
from backend.settings import Settings
from backend.storage.base import StorageProvider


def build_storage(settings: Settings) -> StorageProvider:
    if settings.storage_backend == "s3":
        from backend.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    if settings.storage_backend == "supabase":
        from backend.storage.supabase import SupabaseStorage

        return SupabaseStorage.from_settings(settings)
    from backend.storage.local import LocalStorage

    if settings.storage_signing_secret is not None:
        secret = settings.storage_signing_secret.get_secret_value().encode()
        if len(secret) < 32:
            raise RuntimeError("NOJOIN_STORAGE_SIGNING_SECRET must be at least 32 characters.")
    else:
        secret = load_or_create_secret(settings.data_dir / "secrets" / "storage_hmac.key")
    return LocalStorage(settings.resolved_storage_dir, secret)
