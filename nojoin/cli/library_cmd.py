"""`nojoin library ...`: list, search, show, export, rename speakers, tag and delete meetings."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nojoin import export
from nojoin.models import Meeting


def register(sub: Any) -> None:
    lib = sub.add_parser("library", help="browse and manage the meeting library")
    lsub = lib.add_subparsers(dest="library_command", metavar="ACTION", required=True)

    p = lsub.add_parser("list", help="list meetings, newest first")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--tag", help="only meetings with this tag")
    p.set_defaults(handler=cmd_list)

    p = lsub.add_parser("search", help="full-text search over titles, transcripts and speakers")
    p.add_argument("query")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=cmd_search)

    p = lsub.add_parser("show", help="print a meeting's transcript")
    p.add_argument("id", type=int)
    p.add_argument("--format", default="txt", help="txt, srt, vtt or json")
    p.set_defaults(handler=cmd_show)

    p = lsub.add_parser("export", help="write a meeting's transcript to a file")
    p.add_argument("id", type=int)
    p.add_argument("--format", required=True, help="txt, srt, vtt or json")
    p.add_argument("--output", "-o", required=True)
    p.set_defaults(handler=cmd_export)

    p = lsub.add_parser("rename-speaker", help="name a speaker throughout a meeting")
    p.add_argument("id", type=int)
    p.add_argument("label", help="the speaker's label, e.g. SPEAKER_00")
    p.add_argument("name", help="the name to show (empty to clear)")
    p.set_defaults(handler=cmd_rename_speaker)

    p = lsub.add_parser("merge-speakers", help="merge one speaker into another")
    p.add_argument("id", type=int)
    p.add_argument("source")
    p.add_argument("target")
    p.set_defaults(handler=cmd_merge_speakers)

    p = lsub.add_parser("tag", help="add (or with --remove, remove) a tag")
    p.add_argument("id", type=int)
    p.add_argument("tag")
    p.add_argument("--remove", action="store_true")
    p.set_defaults(handler=cmd_tag)

    p = lsub.add_parser("delete", help="delete a meeting")
    p.add_argument("id", type=int)
    p.add_argument("--audio", action="store_true", help="also delete its audio file")
    p.set_defaults(handler=cmd_delete)


def _open() -> Any:
    from nojoin.library import Library

    lib = Library()
    stuck = lib.interrupted()
    if stuck:
        ids = ", ".join(str(m.id) for m in stuck)
        print(  # noqa: T201
            f"nojoin: warning: processing of meeting(s) {ids} was interrupted; "
            "process them again (nojoin transcribe) to finish.",
            file=sys.stderr,
        )
    return lib


def _meeting_json(m: Meeting) -> dict[str, Any]:
    return {
        "id": m.id,
        "title": m.title,
        "created_at": m.created_at.isoformat(),
        "duration": round(m.duration, 3),
        "status": m.status.value,
        "error": m.error,
        "language": m.language,
        "audio_path": m.audio_path,
        "tags": m.tags,
        "speakers": {s.label: s.display_name for s in m.speakers},
    }


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def cmd_list(args: argparse.Namespace) -> int:
    with _open() as lib:
        meetings = lib.list_meetings(tag=args.tag)
    if args.json:
        print(json.dumps([_meeting_json(m) for m in meetings], indent=2))  # noqa: T201
        return 0
    if not meetings:
        print("No meetings yet. Record one, or: nojoin import FILE", file=sys.stderr)  # noqa: T201
        return 0
    for m in meetings:
        when = m.created_at.astimezone().strftime("%Y-%m-%d %H:%M")
        print(f"{m.id:>5}  {when}  {_duration(m.duration)}  {m.status.value:<10}  {m.title}")  # noqa: T201
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    with _open() as lib:
        hits = lib.search(args.query, limit=args.limit)
    if args.json:
        print(  # noqa: T201
            json.dumps(
                [
                    {
                        "meeting_id": h.meeting_id,
                        "title": h.title,
                        "snippet": h.snippet,
                        "start": h.start,
                        "segment_id": h.segment_id,
                        "rank": h.rank,
                    }
                    for h in hits
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return 0
    if not hits:
        print(f"No matches for {args.query!r}.", file=sys.stderr)  # noqa: T201
        return 0
    for h in hits:
        at = f" @{_duration(h.start)}" if h.start is not None else ""
        print(f"{h.meeting_id:>5}{at}  {h.title}: {h.snippet}")  # noqa: T201
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    fmt = export.check_format(args.format)
    with _open() as lib:
        meeting = lib.get_meeting(args.id)
        text = export.render(
            lib.get_transcript(args.id),
            fmt,
            speaker_names=lib.speaker_names(args.id),
            title=meeting.title,
        )
    sys.stdout.write(text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    fmt = export.check_format(args.format)
    with _open() as lib:
        meeting = lib.get_meeting(args.id)
        out = export.write(
            lib.get_transcript(args.id),
            fmt,
            args.output,
            speaker_names=lib.speaker_names(args.id),
            title=meeting.title,
        )
    print(f"Wrote {out}", file=sys.stderr)  # noqa: T201
    return 0


def cmd_rename_speaker(args: argparse.Namespace) -> int:
    with _open() as lib:
        lib.rename_speaker(args.id, args.label, args.name)
    return 0


def cmd_merge_speakers(args: argparse.Namespace) -> int:
    with _open() as lib:
        lib.merge_speakers(args.id, args.source, args.target)
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    with _open() as lib:
        lib.get_meeting(args.id)
        if args.remove:
            lib.remove_tag(args.id, args.tag)
        else:
            lib.add_tag(args.id, args.tag)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _open() as lib:
        meeting = lib.get_meeting(args.id)
        lib.delete_meeting(args.id, delete_audio=args.audio)
    print(f"Deleted meeting {meeting.id}: {meeting.title}", file=sys.stderr)  # noqa: T201
    return 0
