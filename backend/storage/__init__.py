"""Object storage behind one interface (`base.StorageProvider`): local files with signed URLs
(`local.py`, served by `endpoints.py`), S3 and Supabase Storage; `factory.py` picks one from the
settings."""
