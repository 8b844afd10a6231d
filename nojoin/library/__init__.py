"""The local meeting library (SQLite, `store.Library`): meetings, transcripts, speakers, people,
tags, search, and the status and speaker operations the pipeline and the views call; its
versioned schema is in `migrations`. It implements `nojoin.models.MeetingStore`."""

from __future__ import annotations

from nojoin.library.migrations import SCHEMA_VERSION
from nojoin.library.store import Library, fts_query

__all__ = ["SCHEMA_VERSION", "Library", "fts_query"]
