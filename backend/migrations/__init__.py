"""Ordered SQL migrations (NNNN_name.sql, Supabase-CLI style) and the runner that applies them.

Add a migration by dropping a file here: 0100_jobs.sql, 0200_billing.sql... Files run in
numeric order, each in its own transaction, and are recorded in
nojoin_migrations.schema_migrations; an applied file must never be edited (checksum check).
"""

from backend.migrations.runner import (
    MIGRATIONS_DIR,
    Migration,
    MigrationError,
    apply_migrations,
    discover,
)

__all__ = ["MIGRATIONS_DIR", "Migration", "MigrationError", "apply_migrations", "discover"]
