"""Authentication: Supabase JWT verification (always; `verifier.py`, `dependencies.py`'s
`CurrentUser`) and a built-in Supabase-compatible auth server for embedded mode (`service.py`,
`repository.py`, `keys.py`, `mailer.py`, served at /auth/v1 by `endpoints.py`)."""
