"""Config sync: one JSON settings object per user with optimistic concurrency."""
