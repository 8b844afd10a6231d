"""The meeting library: one SQLite file (WAL) with meetings, transcripts, speakers and tags.

One `Library` owns one connection guarded by a lock, so it may be shared between the
UI thread and workers; separate processes open their own `Library` on the same file.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nojoin import paths, sidecars
from nojoin.errors import LibraryError, NotFoundError
from nojoin.library.migrations import MIGRATIONS, SCHEMA_VERSION
from nojoin.models import (
    Meeting,
    MeetingStatus,
    Person,
    SearchHit,
    Segment,
    Speaker,
    Transcript,
    Word,
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
_TOKEN = re.compile(r"\w+", re.UNICODE)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _parse_time(value: str) -> datetime:
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def fts_query(text: str) -> str | None:
    """Turn what a user typed into a safe FTS5 query: every word must match, the last as a prefix.

    User input never reaches FTS5's own syntax, so quotes or operators cannot cause errors.
    """
    tokens = _TOKEN.findall(text)
    if not tokens:
        return None
    quoted = [f'"{t}"' for t in tokens]
    quoted[-1] += "*"
    return " ".join(quoted)


class Library:
    """Meetings and their transcripts, stored in SQLite at `path` (default: the data dir)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else paths.library_path()
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
                isolation_level=None,
            )
        except (sqlite3.Error, OSError) as exc:
            raise LibraryError(
                f"Cannot open the meeting library at {self.path}: {exc}. "
                "Check that the folder exists and is writable."
            ) from exc
        self._conn.row_factory = sqlite3.Row
        try:
            with self._guard("open"):
                self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                self._conn.execute("PRAGMA foreign_keys = ON")
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    log.warning("library journal mode is %s, not WAL", mode)
                self._conn.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
        except LibraryError:
            self._conn.close()
            raise

    # ---------------------------------------------------------------- plumbing

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Map sqlite3 errors to LibraryError messages a user can act on."""
        try:
            with self._lock:
                yield
        except sqlite3.DatabaseError as exc:
            msg = str(exc)
            if "locked" in msg or "busy" in msg:
                raise LibraryError(
                    f"The meeting library is busy (locked by another program) while trying to {what}. "
                    "Close other copies of Nojoin and try again."
                ) from exc
            if "not a database" in msg or "malformed" in msg or "corrupt" in msg:
                raise LibraryError(
                    f"The meeting library at {self.path} is damaged ({msg}). "
                    "Restore it from a backup, or move the file aside to start a new library."
                ) from exc
            if "readonly" in msg or "read-only" in msg or "unable to open" in msg:
                raise LibraryError(
                    f"Cannot write the meeting library at {self.path} ({msg}). "
                    "Check the folder's permissions and free disk space."
                ) from exc
            if "disk" in msg or "full" in msg:
                raise LibraryError(
                    f"Cannot {what}: the disk is full ({msg}). Free some space and try again."
                ) from exc
            raise LibraryError(f"Library error while trying to {what}: {msg}") from exc

    @contextmanager
    def _tx(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE so writers queue instead of deadlocking)."""
        with self._guard(what):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _q(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = (), what: str = "read"
    ) -> list[sqlite3.Row]:
        with self._guard(what):
            return self._conn.execute(sql, params).fetchall()

    @property
    def schema_version(self) -> int:
        return int(self._q("PRAGMA user_version")[0][0])

    def _migrate(self) -> None:
        current = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
        if current > SCHEMA_VERSION:
            raise LibraryError(
                f"The meeting library at {self.path} was written by a newer Nojoin "
                f"(schema {current}, this version knows {SCHEMA_VERSION}). Update Nojoin."
            )
        for version in range(current + 1, SCHEMA_VERSION + 1):
            log.info("upgrading library %s to schema %d", self.path, version)
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(MIGRATIONS[version - 1]):
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {version}")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def integrity_check(self) -> str:
        """'ok' or SQLite's description of what is damaged."""
        rows = self._q("PRAGMA integrity_check", what="check the library")
        return "; ".join(str(r[0]) for r in rows)

    # ---------------------------------------------------------------- meetings

    def add_meeting(
        self,
        title: str,
        *,
        audio_path: str | Path | None = None,
        duration: float = 0.0,
        status: MeetingStatus = MeetingStatus.RECORDED,
        created_at: datetime | None = None,
        language: str | None = None,
    ) -> Meeting:
        title = title.strip() or "Untitled meeting"
        created = (created_at or datetime.now(UTC)).isoformat(timespec="seconds")
        with self._tx("add a meeting") as c:
            cur = c.execute(
                "INSERT INTO meetings (title, created_at, duration, audio_path, status, language,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (title, created, float(duration), _str(audio_path), status.value, language, _now()),
            )
            meeting_id = int(cur.lastrowid or 0)
        return self.get_meeting(meeting_id)

    def get_meeting(self, meeting_id: int) -> Meeting:
        rows = self._q("SELECT * FROM meetings WHERE id = ?", (meeting_id,))
        if not rows:
            raise NotFoundError(f"No meeting with id {meeting_id}.")
        return self._meetings_from_rows(rows)[0]

    def list_meetings(
        self,
        *,
        tag: str | None = None,
        status: MeetingStatus | None = None,
        ids: Sequence[int] | None = None,
        limit: int | None = None,
    ) -> list[Meeting]:
        """Newest first; `ids` keeps the given order (used for search results)."""
        sql = "SELECT m.* FROM meetings m"
        where: list[str] = []
        params: list[Any] = []
        if tag is not None:
            sql += " JOIN meeting_tags mt ON mt.meeting_id = m.id JOIN tags t ON t.id = mt.tag_id"
            where.append("t.name = ?")
            params.append(tag)
        if status is not None:
            where.append("m.status = ?")
            params.append(status.value)
        if ids is not None:
            if not ids:
                return []
            where.append(f"m.id IN ({','.join('?' * len(ids))})")
            params.extend(ids)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY m.created_at DESC, m.id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        meetings = self._meetings_from_rows(self._q(sql, params))
        if ids is not None:
            order = {mid: i for i, mid in enumerate(ids)}
            meetings.sort(key=lambda m: order[m.id])
        return meetings

    def _meetings_from_rows(self, rows: Sequence[sqlite3.Row]) -> list[Meeting]:
        if not rows:
            return []
        ids = [int(r["id"]) for r in rows]
        marks = ",".join("?" * len(ids))
        tags: dict[int, list[str]] = {i: [] for i in ids}
        for t in self._q(
            f"SELECT mt.meeting_id, t.name FROM meeting_tags mt JOIN tags t ON t.id = mt.tag_id "
            f"WHERE mt.meeting_id IN ({marks}) ORDER BY t.name COLLATE NOCASE",
            ids,
        ):
            tags[int(t[0])].append(str(t[1]))
        speakers: dict[int, list[Speaker]] = {i: [] for i in ids}
        for s in self._q(
            f"SELECT * FROM speakers WHERE meeting_id IN ({marks}) ORDER BY label", ids
        ):
            speakers[int(s["meeting_id"])].append(_speaker(s))
        return [
            Meeting(
                id=int(r["id"]),
                title=str(r["title"]),
                created_at=_parse_time(r["created_at"]),
                duration=float(r["duration"] or 0.0),
                audio_path=r["audio_path"],
                status=MeetingStatus(r["status"]),
                error=r["error"],
                language=r["language"],
                tags=tags[int(r["id"])],
                speakers=speakers[int(r["id"])],
            )
            for r in rows
        ]

    def update_meeting(
        self,
        meeting_id: int,
        *,
        title: str | None = None,
        audio_path: str | Path | None = None,
        duration: float | None = None,
    ) -> Meeting:
        sets: list[str] = []
        params: list[Any] = []
        if title is not None:
            if not title.strip():
                raise LibraryError("A meeting title cannot be empty.")
            sets.append("title = ?")
            params.append(title.strip())
        if audio_path is not None:
            sets.append("audio_path = ?")
            params.append(str(audio_path))
        if duration is not None:
            sets.append("duration = ?")
            params.append(float(duration))
        if sets:
            with self._tx("update a meeting") as c:
                self._require_meeting(c, meeting_id)
                c.execute(
                    f"UPDATE meetings SET {', '.join(sets)}, updated_at = ? WHERE id = ?",
                    (*params, _now(), meeting_id),
                )
        return self.get_meeting(meeting_id)

    def set_status(self, meeting_id: int, status: MeetingStatus, error: str | None = None) -> None:
        with self._tx("update a meeting's status") as c:
            self._require_meeting(c, meeting_id)
            c.execute(
                "UPDATE meetings SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                (
                    status.value,
                    error if status is MeetingStatus.ERROR else None,
                    _now(),
                    meeting_id,
                ),
            )

    # Status transitions of a processing run (the pipeline calls these; views never do).

    def start_processing(self, meeting_id: int) -> None:
        """A run started: status `processing` (a crash leaves it there: `interrupted()`)."""
        self.set_status(meeting_id, MeetingStatus.PROCESSING)

    def processing_failed(self, meeting_id: int, error: str) -> None:
        """A run failed: status `error` with the message the user sees (any earlier transcript
        stays)."""
        self.set_status(meeting_id, MeetingStatus.ERROR, error)

    def processing_cancelled(self, meeting_id: int) -> MeetingStatus:
        """The user cancelled a run: not a failure, so the meeting goes back to `processed`
        when it has an earlier transcript (kept), else to `recorded`. Returns the status."""
        with self._tx("put a meeting back after a cancelled run") as c:
            self._require_meeting(c, meeting_id)
            has = c.execute(
                "SELECT 1 FROM segments WHERE meeting_id = ? LIMIT 1", (meeting_id,)
            ).fetchone()
            status = MeetingStatus.PROCESSED if has else MeetingStatus.RECORDED
            c.execute(
                "UPDATE meetings SET status = ?, error = NULL, updated_at = ? WHERE id = ?",
                (status.value, _now(), meeting_id),
            )
        return status

    def interrupted(self) -> list[Meeting]:
        """Meetings left in `processing`: a crash or kill stopped their processing."""
        return self.list_meetings(status=MeetingStatus.PROCESSING)

    def mark_interrupted(self, meeting_ids: Sequence[int] | None = None) -> list[int]:
        """Move meetings stuck in `processing` to `error` so the user can retry them."""
        ids = [m.id for m in self.interrupted()] if meeting_ids is None else list(meeting_ids)
        for mid in ids:
            self.set_status(
                mid,
                MeetingStatus.ERROR,
                "Processing was interrupted (Nojoin was closed or crashed). Process it again.",
            )
        return ids

    def delete_meeting(self, meeting_id: int, *, delete_audio: bool = False) -> None:
        """Delete the meeting; with `delete_audio`, also its audio file and the app's working
        files for it (sidecars), never a file another meeting or a recording still uses."""
        meeting = self.get_meeting(meeting_id)
        audio = meeting.audio_path if delete_audio else None
        others: list[str] = []
        with self._tx("delete a meeting") as c:
            c.execute("DELETE FROM meetings WHERE id = ?", (meeting_id,))
            if audio:  # the other meetings' files, read only when there is audio to delete
                sql = "SELECT audio_path FROM meetings WHERE audio_path IS NOT NULL"
                others = [str(r[0]) for r in c.execute(sql)]
        if audio:
            _delete_audio(Path(audio), others)

    # ------------------------------------------------------------- transcripts

    def save_transcript(self, meeting_id: int, transcript: Transcript) -> None:
        """Replace the meeting's transcript and speakers, and mark it processed.

        Names the user gave to speakers survive re-processing when the label is unchanged.
        """
        with self._tx("save a transcript") as c:
            self._require_meeting(c, meeting_id)
            old = {
                r["label"]: (r["name"], r["person_id"])
                for r in c.execute(
                    "SELECT label, name, person_id FROM speakers WHERE meeting_id = ?",
                    (meeting_id,),
                )
            }
            c.execute("DELETE FROM segments WHERE meeting_id = ?", (meeting_id,))
            c.execute("DELETE FROM speakers WHERE meeting_id = ?", (meeting_id,))
            speaker_ids: dict[str, int] = {}
            for label in transcript.speakers:
                name, person = old.get(label, (None, None))
                cur = c.execute(
                    "INSERT INTO speakers (meeting_id, label, name, person_id) VALUES (?, ?, ?, ?)",
                    (meeting_id, label, name, person),
                )
                speaker_ids[label] = int(cur.lastrowid or 0)
            c.executemany(
                "INSERT INTO segments (meeting_id, idx, start, end, speaker_id, text, words)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        meeting_id,
                        i,
                        s.start,
                        s.end,
                        speaker_ids.get(s.speaker) if s.speaker else None,
                        s.text.strip(),
                        json.dumps([w.to_dict() for w in s.words]),
                    )
                    for i, s in enumerate(transcript.segments)
                ],
            )
            sets = "status = 'processed', error = NULL, language = ?, updated_at = ?"
            params: list[Any] = [transcript.language, _now()]
            if transcript.duration > 0:
                sets += ", duration = ?"
                params.append(transcript.duration)
            c.execute(f"UPDATE meetings SET {sets} WHERE id = ?", (*params, meeting_id))

    def segments(self, meeting_id: int) -> list[Segment]:
        self.get_meeting(meeting_id)
        rows = self._q(
            "SELECT s.*, sp.label FROM segments s LEFT JOIN speakers sp ON sp.id = s.speaker_id"
            " WHERE s.meeting_id = ? ORDER BY s.idx",
            (meeting_id,),
        )
        return [
            Segment(
                id=int(r["id"]),
                start=float(r["start"]),
                end=float(r["end"]),
                text=str(r["text"]),
                speaker=r["label"],
                words=[Word.from_dict(w) for w in json.loads(r["words"] or "[]")],
            )
            for r in rows
        ]

    def get_transcript(self, meeting_id: int) -> Transcript:
        meeting = self.get_meeting(meeting_id)
        return Transcript(
            segments=self.segments(meeting_id),
            language=meeting.language,
            duration=meeting.duration,
        )

    def update_segment_text(self, segment_id: int, text: str) -> None:
        with self._tx("edit a segment") as c:
            cur = c.execute("UPDATE segments SET text = ? WHERE id = ?", (text.strip(), segment_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"No segment with id {segment_id}.")

    # ---------------------------------------------------------------- speakers

    def speakers(self, meeting_id: int) -> list[Speaker]:
        return self.get_meeting(meeting_id).speakers

    def speaker_names(self, meeting_id: int) -> dict[str, str]:
        """label -> what to show (the user's name, else the label)."""
        return {s.label: s.display_name for s in self.speakers(meeting_id)}

    def rename_speaker(self, meeting_id: int, label: str, name: str) -> None:
        """Name a speaker for the whole meeting; an empty name goes back to the label."""
        with self._tx("rename a speaker") as c:
            cur = c.execute(
                "UPDATE speakers SET name = ? WHERE meeting_id = ? AND label = ?",
                (name.strip() or None, meeting_id, label),
            )
            if cur.rowcount == 0:
                raise NotFoundError(f"Meeting {meeting_id} has no speaker {label!r}.")

    def merge_speakers(self, meeting_id: int, source: str, target: str) -> None:
        """Give all of `source`'s segments to `target` and remove `source`."""
        if source == target:
            raise LibraryError("Choose two different speakers to merge.")
        with self._tx("merge speakers") as c:
            ids = {}
            for label in (source, target):
                row = c.execute(
                    "SELECT id FROM speakers WHERE meeting_id = ? AND label = ?",
                    (meeting_id, label),
                ).fetchone()
                if row is None:
                    raise NotFoundError(f"Meeting {meeting_id} has no speaker {label!r}.")
                ids[label] = int(row[0])
            c.execute(
                "UPDATE segments SET speaker_id = ? WHERE speaker_id = ?",
                (ids[target], ids[source]),
            )
            # Words carry their own label (a segment may hold a few words of someone else).
            rows = c.execute(
                "SELECT id, words FROM segments WHERE meeting_id = ?", (meeting_id,)
            ).fetchall()
            c.executemany(
                "UPDATE segments SET words = ? WHERE id = ?",
                [
                    (words, int(r["id"]))
                    for r in rows
                    if (words := _relabel_words(r["words"], target, only=source)) is not None
                ],
            )
            c.execute("DELETE FROM speakers WHERE id = ?", (ids[source],))

    def reassign_segment(self, segment_id: int, label: str) -> None:
        """Give one segment, all of its words included, to another speaker of the same meeting
        (created if new)."""
        with self._tx("reassign a segment") as c:
            row = c.execute(
                "SELECT meeting_id, words FROM segments WHERE id = ?", (segment_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"No segment with id {segment_id}.")
            meeting_id = int(row[0])
            c.execute(
                "INSERT OR IGNORE INTO speakers (meeting_id, label) VALUES (?, ?)",
                (meeting_id, label),
            )
            self._reassign(c, segment_id, meeting_id, label)

    def reassign_to_new_speaker(self, segment_id: int, name: str = "") -> str:
        """Give one segment to a new speaker of its meeting (the next free `SPEAKER_nn`
        label), named `name` if given; one transaction. Returns the new label."""
        with self._tx("give a segment to a new speaker") as c:
            row = c.execute(
                "SELECT meeting_id FROM segments WHERE id = ?", (segment_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"No segment with id {segment_id}.")
            meeting_id = int(row[0])
            labels = {
                str(r[0])
                for r in c.execute("SELECT label FROM speakers WHERE meeting_id = ?", (meeting_id,))
            }
            n = 0
            while f"SPEAKER_{n:02d}" in labels:
                n += 1
            label = f"SPEAKER_{n:02d}"
            c.execute(
                "INSERT INTO speakers (meeting_id, label, name) VALUES (?, ?, ?)",
                (meeting_id, label, name.strip() or None),
            )
            self._reassign(c, segment_id, meeting_id, label)
        return label

    @staticmethod
    def _reassign(c: sqlite3.Connection, segment_id: int, meeting_id: int, label: str) -> None:
        words = c.execute("SELECT words FROM segments WHERE id = ?", (segment_id,)).fetchone()[0]
        c.execute(
            "UPDATE segments SET speaker_id = "
            "(SELECT id FROM speakers WHERE meeting_id = ? AND label = ?),"
            " words = coalesce(?, words) WHERE id = ?",
            (meeting_id, label, _relabel_words(words, label), segment_id),
        )

    # ------------------------------------------------------------------ people

    def people(self) -> list[Person]:
        return [
            Person(id=int(r["id"]), name=str(r["name"]))
            for r in self._q("SELECT * FROM people ORDER BY name COLLATE NOCASE")
        ]

    def add_person(self, name: str) -> Person:
        with self._tx("add a person") as c:
            return self._person(c, name)

    @staticmethod
    def _person(c: sqlite3.Connection, name: str) -> Person:
        """The person called `name`, added if new."""
        name = name.strip()
        if not name:
            raise LibraryError("A person needs a name.")
        c.execute("INSERT OR IGNORE INTO people (name) VALUES (?)", (name,))
        row = c.execute("SELECT id, name FROM people WHERE name = ?", (name,)).fetchone()
        return Person(id=int(row[0]), name=str(row[1]))

    def link_speaker_to(self, meeting_id: int, label: str, person_name: str) -> Person:
        """Say who a meeting's speaker is by name: the person (added if new) is linked and
        their name becomes the speaker's; one transaction."""
        with self._tx("link a speaker to a person") as c:
            person = self._person(c, person_name)
            self._link(c, meeting_id, label, person.id, person.name)
        return person

    def link_speaker(self, meeting_id: int, label: str, person_id: int | None) -> None:
        """Link a meeting's speaker to a known person; their name becomes the speaker's name."""
        with self._tx("link a speaker to a person") as c:
            name = None
            if person_id is not None:
                row = c.execute("SELECT name FROM people WHERE id = ?", (person_id,)).fetchone()
                if row is None:
                    raise NotFoundError(f"No person with id {person_id}.")
                name = str(row[0])
            self._link(c, meeting_id, label, person_id, name)

    @staticmethod
    def _link(
        c: sqlite3.Connection, meeting_id: int, label: str, person_id: int | None, name: str | None
    ) -> None:
        cur = c.execute(
            "UPDATE speakers SET person_id = ?, name = coalesce(?, name)"
            " WHERE meeting_id = ? AND label = ?",
            (person_id, name, meeting_id, label),
        )
        if cur.rowcount == 0:
            raise NotFoundError(f"Meeting {meeting_id} has no speaker {label!r}.")

    def meetings_with_person(self, person_id: int) -> list[Meeting]:
        rows = self._q("SELECT DISTINCT meeting_id FROM speakers WHERE person_id = ?", (person_id,))
        return self.list_meetings(ids=[int(r[0]) for r in rows]) if rows else []

    # -------------------------------------------------------------------- tags

    def add_tag(self, meeting_id: int, tag: str) -> None:
        tag = tag.strip()
        if not tag:
            raise LibraryError("A tag cannot be empty.")
        with self._tx("tag a meeting") as c:
            self._require_meeting(c, meeting_id)
            c.execute("INSERT OR IGNORE INTO tags (name) VALUES (?)", (tag,))
            c.execute(
                "INSERT OR IGNORE INTO meeting_tags (meeting_id, tag_id)"
                " SELECT ?, id FROM tags WHERE name = ?",
                (meeting_id, tag),
            )

    def remove_tag(self, meeting_id: int, tag: str) -> None:
        with self._tx("untag a meeting") as c:
            c.execute(
                "DELETE FROM meeting_tags WHERE meeting_id = ?"
                " AND tag_id = (SELECT id FROM tags WHERE name = ?)",
                (meeting_id, tag),
            )
            c.execute("DELETE FROM tags WHERE id NOT IN (SELECT tag_id FROM meeting_tags)")

    def set_tags(self, meeting_id: int, tags: Sequence[str]) -> list[str]:
        """Make the meeting's tags exactly `tags` (blank and repeated ones dropped, order
        kept); one transaction. Returns the tags as stored."""
        wanted = list(dict.fromkeys(t.strip() for t in tags if t.strip()))
        with self._tx("tag a meeting") as c:
            self._require_meeting(c, meeting_id)
            c.execute("DELETE FROM meeting_tags WHERE meeting_id = ?", (meeting_id,))
            for tag in wanted:
                c.execute("INSERT OR IGNORE INTO tags (name) VALUES (?)", (tag,))
                c.execute(
                    "INSERT OR IGNORE INTO meeting_tags (meeting_id, tag_id)"
                    " SELECT ?, id FROM tags WHERE name = ?",
                    (meeting_id, tag),
                )
            c.execute("DELETE FROM tags WHERE id NOT IN (SELECT tag_id FROM meeting_tags)")
        return wanted

    def all_tags(self) -> list[str]:
        return [str(r[0]) for r in self._q("SELECT name FROM tags ORDER BY name COLLATE NOCASE")]

    # ------------------------------------------------------------------ search

    def search(self, query: str, *, limit: int = 50) -> list[SearchHit]:
        """Best matches first (bm25) across titles, transcript text and speaker names."""
        match = fts_query(query)
        if match is None:
            return []
        # Titles weigh more than a passing mention in the transcript.
        sql = """
            SELECT m.id AS meeting_id, m.title, NULL AS segment_id, NULL AS start,
                   highlight(meetings_fts, 0, '[', ']') AS snippet,
                   bm25(meetings_fts) * 2.0 AS rank
              FROM meetings_fts JOIN meetings m ON m.id = meetings_fts.rowid
             WHERE meetings_fts MATCH :q
            UNION ALL
            SELECT s.meeting_id, m.title, s.id, s.start,
                   snippet(segments_fts, 0, '[', ']', '…', 12),
                   bm25(segments_fts)
              FROM segments_fts JOIN segments s ON s.id = segments_fts.rowid
              JOIN meetings m ON m.id = s.meeting_id
             WHERE segments_fts MATCH :q
            UNION ALL
            SELECT sp.meeting_id, m.title, NULL, NULL,
                   'Speaker: ' || highlight(speakers_fts, 0, '[', ']'),
                   bm25(speakers_fts) * 1.5
              FROM speakers_fts JOIN speakers sp ON sp.id = speakers_fts.rowid
              JOIN meetings m ON m.id = sp.meeting_id
             WHERE speakers_fts MATCH :q
            ORDER BY rank LIMIT :limit
        """
        rows = self._q(sql, {"q": match, "limit": limit}, what="search")
        return [
            SearchHit(
                meeting_id=int(r["meeting_id"]),
                title=str(r["title"]),
                snippet=str(r["snippet"]),
                rank=float(r["rank"]),
                segment_id=r["segment_id"],
                start=r["start"],
            )
            for r in rows
        ]

    def search_meetings(self, query: str, *, limit: int = 200) -> list[int]:
        """Meeting ids that match, best first (each meeting once)."""
        ids: dict[int, None] = {}
        for hit in self.search(query, limit=limit):
            ids.setdefault(hit.meeting_id, None)
        return list(ids)

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def _require_meeting(c: sqlite3.Connection, meeting_id: int) -> None:
        if c.execute("SELECT 1 FROM meetings WHERE id = ?", (meeting_id,)).fetchone() is None:
            raise NotFoundError(f"No meeting with id {meeting_id}.")


def _speaker(r: sqlite3.Row) -> Speaker:
    return Speaker(
        id=int(r["id"]),
        meeting_id=int(r["meeting_id"]),
        label=str(r["label"]),
        name=r["name"],
        person_id=r["person_id"],
    )


def _delete_audio(audio: Path, in_use: Sequence[str]) -> None:
    """Remove `audio` and its sidecars, unless outside our audio folder or still in use."""
    # Only files inside our own audio folder: an imported file the user referenced in place
    # stays where it is.
    try:
        inside = audio.resolve().is_relative_to(paths.audio_dir().resolve())
    except OSError:
        inside = False
    if not inside:
        log.info("kept %s: it is not in Nojoin's audio folder", audio)
        return
    others = [Path(p) for p in in_use]
    journaled: set[str] | None = None
    # Exact names only, never a pattern: `call.wav` and `call.mp3` are two meetings' files.
    for p in (audio, *sidecars.sidecars(audio)):
        if not (p.exists() or p.is_symlink()):
            continue
        if any(_same_file(p, q) for q in others if q.name.casefold() == p.name.casefold()):
            log.info("kept %s: another meeting uses it", p)
            continue
        if journaled is None:
            journaled = sidecars.journaled_files()
        if sidecars.path_key(p) in journaled:
            log.info("kept %s: a recording (running, or to be recovered) uses it", p)
            continue
        try:
            p.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete %s: %s", p, exc)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # b is gone (or unreadable): compare the names
        return sidecars.path_key(a) == sidecars.path_key(b)


def _relabel_words(words_json: str | None, label: str, *, only: str | None = None) -> str | None:
    """The segment's words JSON with each word's speaker set to `label` (only the words of
    speaker `only`, if given), or None when no word changes."""
    words = json.loads(words_json or "[]")
    changed = False
    for w in words:
        if (only is None or w.get("speaker") == only) and w.get("speaker") != label:
            w["speaker"] = label
            changed = True
    return json.dumps(words) if changed else None


def _str(p: str | Path | None) -> str | None:
    return None if p is None else str(p)


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (BEGIN ... END;) whole."""
    statements: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                statements.append(buf.strip())
            buf = ""
    if buf.strip():
        statements.append(buf.strip())
    return statements
