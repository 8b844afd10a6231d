"""Authentication: Supabase JWT verification (always) and a built-in Supabase-compatible auth
server (embedded mode)."""
