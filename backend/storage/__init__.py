"""Object storage behind one interface: local files with signed URLs, S3, Supabase Storage."""
