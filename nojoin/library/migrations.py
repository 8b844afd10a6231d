"""Schema migrations for the meeting library, applied in order by version number.

Each entry upgrades the database from version N-1 to N inside one transaction;
`PRAGMA user_version` records where a database stands. Never edit a released
migration: add a new one.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: meetings, speakers and segments.
    """
    CREATE TABLE meetings (
        id          INTEGER PRIMARY KEY,
        title       TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        duration    REAL NOT NULL DEFAULT 0,
        audio_path  TEXT,
        status      TEXT NOT NULL DEFAULT 'recorded'
                    CHECK (status IN ('recorded', 'processing', 'processed', 'error')),
        error       TEXT
    );
    CREATE TABLE speakers (
        id          INTEGER PRIMARY KEY,
        meeting_id  INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
        label       TEXT NOT NULL,
        name        TEXT,
        UNIQUE (meeting_id, label)
    );
    CREATE TABLE segments (
        id          INTEGER PRIMARY KEY,
        meeting_id  INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
        idx         INTEGER NOT NULL,
        start       REAL NOT NULL,
        end         REAL NOT NULL,
        speaker_id  INTEGER REFERENCES speakers(id) ON DELETE SET NULL,
        text        TEXT NOT NULL DEFAULT '',
        words       TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX segments_meeting ON segments(meeting_id, idx);
    """,
    # 2: language, people across meetings, tags.
    """
    ALTER TABLE meetings ADD COLUMN language TEXT;
    ALTER TABLE meetings ADD COLUMN updated_at TEXT;
    CREATE TABLE people (
        id    INTEGER PRIMARY KEY,
        name  TEXT NOT NULL UNIQUE COLLATE NOCASE
    );
    ALTER TABLE speakers ADD COLUMN person_id INTEGER REFERENCES people(id) ON DELETE SET NULL;
    CREATE TABLE tags (
        id    INTEGER PRIMARY KEY,
        name  TEXT NOT NULL UNIQUE COLLATE NOCASE
    );
    CREATE TABLE meeting_tags (
        meeting_id  INTEGER NOT NULL REFERENCES meetings(id) ON DELETE CASCADE,
        tag_id      INTEGER NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
        PRIMARY KEY (meeting_id, tag_id)
    );
    CREATE INDEX meetings_status ON meetings(status);
    """,
    # 3: full-text search over titles, transcript text and speaker names (FTS5,
    # external content kept in step by triggers so every writer updates it).
    """
    CREATE VIRTUAL TABLE segments_fts USING fts5(
        text, content='segments', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER segments_ai AFTER INSERT ON segments BEGIN
        INSERT INTO segments_fts(rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER segments_ad AFTER DELETE ON segments BEGIN
        INSERT INTO segments_fts(segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    CREATE TRIGGER segments_au AFTER UPDATE OF text ON segments BEGIN
        INSERT INTO segments_fts(segments_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO segments_fts(rowid, text) VALUES (new.id, new.text);
    END;
    INSERT INTO segments_fts(rowid, text) SELECT id, text FROM segments;

    CREATE VIRTUAL TABLE meetings_fts USING fts5(
        title, content='meetings', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER meetings_ai AFTER INSERT ON meetings BEGIN
        INSERT INTO meetings_fts(rowid, title) VALUES (new.id, new.title);
    END;
    CREATE TRIGGER meetings_ad AFTER DELETE ON meetings BEGIN
        INSERT INTO meetings_fts(meetings_fts, rowid, title) VALUES ('delete', old.id, old.title);
    END;
    CREATE TRIGGER meetings_au AFTER UPDATE OF title ON meetings BEGIN
        INSERT INTO meetings_fts(meetings_fts, rowid, title) VALUES ('delete', old.id, old.title);
        INSERT INTO meetings_fts(rowid, title) VALUES (new.id, new.title);
    END;
    INSERT INTO meetings_fts(rowid, title) SELECT id, title FROM meetings;

    CREATE VIRTUAL TABLE speakers_fts USING fts5(
        name, content='speakers', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER speakers_ai AFTER INSERT ON speakers BEGIN
        INSERT INTO speakers_fts(rowid, name) VALUES (new.id, coalesce(new.name, ''));
    END;
    CREATE TRIGGER speakers_ad AFTER DELETE ON speakers BEGIN
        INSERT INTO speakers_fts(speakers_fts, rowid, name)
            VALUES ('delete', old.id, coalesce(old.name, ''));
    END;
    CREATE TRIGGER speakers_au AFTER UPDATE OF name ON speakers BEGIN
        INSERT INTO speakers_fts(speakers_fts, rowid, name)
            VALUES ('delete', old.id, coalesce(old.name, ''));
        INSERT INTO speakers_fts(rowid, name) VALUES (new.id, coalesce(new.name, ''));
    END;
    INSERT INTO speakers_fts(rowid, name) SELECT id, coalesce(name, '') FROM speakers;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
