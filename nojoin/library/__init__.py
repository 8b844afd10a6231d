"""The local meeting library (SQLite): meetings, transcripts, speakers, people, tags, search."""

from __future__ import annotations

from nojoin.library.migrations import SCHEMA_VERSION
from nojoin.library.store import Library, fts_query

__all__ = ["SCHEMA_VERSION", "Library", "fts_query"]
