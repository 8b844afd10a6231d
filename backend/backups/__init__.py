"""Database backups: signed upload/download URLs into the user's own folder of `user-backups`."""
