"""The jobs API over real HTTP (uvicorn) with nothing processing jobs (dispatch "none"):
submission, idempotency, validation errors and their status codes, ownership, cancel."""

from __future__ import annotations

import json
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.jobs.queue import JobQueue
from backend.jobs.settings import JobSettings
from backend.runtime import Runtime
from nojoin.testing.synth import SynthMeeting, make_silence

pytestmark = pytest.mark.postgres

JOBS = "/api/v1/jobs"


@pytest.fixture(scope="module")
def job_settings_overrides() -> dict[str, Any]:
    return {"job_dispatch": "none", "job_max_audio_seconds": 60.0}


@pytest.fixture(scope="module")
def alice(create_user: Any) -> Any:
    return create_user()


@pytest.fixture(scope="module")
def bob(create_user: Any) -> Any:
    return create_user()


def submit(
    http: httpx.Client,
    user: Any,
    path: Path,
    *,
    params: dict[str, Any] | None = None,
    key: str | None = None,
) -> httpx.Response:
    headers = dict(user.headers)
    if key:
        headers["Idempotency-Key"] = key
    data = {"params": json.dumps(params)} if params is not None else None
    with open(path, "rb") as fh:
        return http.post(JOBS, headers=headers, files={"file": (path.name, fh)}, data=data)


def job_rows(runtime: Runtime, user_id: uuid.UUID) -> list[dict[str, Any]]:
    with runtime.db.transaction() as conn:
        return conn.execute(
            "SELECT j.*, f.storage_path FROM public.jobs j"
            " LEFT JOIN public.job_files f ON f.job_id = j.id AND f.kind = 'input'"
            " WHERE j.user_id = %s ORDER BY j.created_at",
            (user_id,),
        ).fetchall()


def test_submit_then_status(
    http: httpx.Client, runtime: Runtime, tiny_meeting: SynthMeeting, alice: Any
) -> None:
    r = submit(http, alice, tiny_meeting.path, params={"model": "tiny.en", "diarize": False})
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    assert set(r.json()) == {"job_id"}
    s = http.get(f"{JOBS}/{job_id}", headers=alice.headers)
    assert s.status_code == 200
    assert s.json() == {
        "job_id": job_id,
        "status": "QUEUED",
        "progress": 0.0,
        "error": None,
        "result": None,
        "stage": None,
    }
    row = next(r for r in job_rows(runtime, alice.id) if str(r["id"]) == job_id)
    assert row["kind"] == "transcribe" and row["params"] == {"model": "tiny.en", "diarize": False}
    assert row["audio_seconds"] == pytest.approx(tiny_meeting.duration, abs=0.05)
    # The upload is in storage under the user's folder, byte for byte.
    key = row["storage_path"]
    assert key.startswith(f"{alice.id}/jobs/{job_id}/") and key.endswith(".wav")
    stored = b"".join(runtime.storage.iter_bytes(key))
    assert stored == tiny_meeting.path.read_bytes()


def test_same_idempotency_key_gives_one_job(
    http: httpx.Client, runtime: Runtime, tiny_meeting: SynthMeeting, create_user: Any
) -> None:
    user = create_user()
    first = submit(http, user, tiny_meeting.path, key="meeting-42")
    second = submit(http, user, tiny_meeting.path, key="meeting-42")
    assert first.status_code == second.status_code == 202
    assert first.json()["job_id"] == second.json()["job_id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert len(job_rows(runtime, user.id)) == 1
    third = submit(http, user, tiny_meeting.path, key="meeting-43")
    assert third.json()["job_id"] != first.json()["job_id"]
    assert len(job_rows(runtime, user.id)) == 2


def test_parallel_submissions_with_one_key_give_one_job(
    http: httpx.Client, runtime: Runtime, tiny_meeting: SynthMeeting, create_user: Any
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    user = create_user()
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: submit(http, user, tiny_meeting.path, key="same"), range(4))
        )
    assert {r.status_code for r in answers} == {202}
    assert len({r.json()["job_id"] for r in answers}) == 1
    rows = job_rows(runtime, user.id)
    assert len(rows) == 1
    # The losers' uploads were removed again: only the winner's input is stored.
    user_dir = runtime.settings.resolved_storage_dir / str(user.id) / "jobs"
    files = [p for p in user_dir.rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].parent.name == str(rows[0]["id"])


def test_non_audio_is_415(http: httpx.Client, alice: Any, tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"  # the name and type lie; the bytes decide
    text.write_text("These are my meeting notes, not audio.\n" * 50)
    r = submit(http, alice, text)
    assert r.status_code == 415
    assert "not a supported audio" in r.json()["detail"]
    # Magic bytes of a WAV, but nothing decodable after them.
    fake = tmp_path / "fake.wav"
    fake.write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + b"\x00" * 100)
    r = submit(http, alice, fake)
    assert r.status_code == 415, r.text
    assert "could not be read as audio" in r.json()["detail"]


def test_not_multipart_is_415(http: httpx.Client, alice: Any) -> None:
    r = http.post(JOBS, headers=alice.headers, content=b"RIFF....", params=None)
    assert r.status_code == 415
    assert "multipart/form-data" in r.json()["detail"]


def test_missing_file_is_422(http: httpx.Client, alice: Any) -> None:
    r = http.post(JOBS, headers=alice.headers, data={"params": "{}"}, files={"x": ("", b"")})
    assert r.status_code in (400, 422)
    assert "file" in r.json()["detail"]


def test_oversized_upload_is_413_declared_and_streamed(
    http: httpx.Client, alice: Any, job_settings: JobSettings, runtime: Runtime, tmp_path: Path
) -> None:
    big = tmp_path / "big.wav"
    make_silence(big, seconds=(job_settings.job_max_upload_bytes / 32000) + 5)
    before = len(job_rows(runtime, alice.id))
    r = submit(http, alice, big)  # Content-Length says too much: refused before the body
    assert r.status_code == 413 and "limit" in r.json()["detail"]

    # Chunked body, no Content-Length: refused while streaming, nothing kept.
    boundary = "nojoinboundary"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="big.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        with open(big, "rb") as fh:
            while chunk := fh.read(256 * 1024):
                yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    r = http.post(
        JOBS,
        headers={**alice.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body(),
    )
    assert r.status_code == 413
    assert len(job_rows(runtime, alice.id)) == before
    uploads = runtime.settings.data_dir / "tmp" / "uploads"
    assert not any(uploads.iterdir())  # the partial temp file is gone


def test_too_long_recording_is_413(http: httpx.Client, alice: Any, tmp_path: Path) -> None:
    long = tmp_path / "long.wav"
    make_silence(long, seconds=61)
    r = submit(http, alice, long)
    assert r.status_code == 413
    assert "Process it locally" in r.json()["detail"]


def test_empty_audio_is_422(http: httpx.Client, alice: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    r = submit(http, alice, empty)
    assert r.status_code == 422
    assert "no audio" in r.json()["detail"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"model": "/etc/passwd"}, "params.model"),
        ({"model": "huge-v9"}, "params.model"),
        ({"device": "cuda"}, "Unknown params device"),
        ({"num_speakers": 0}, "num_speakers"),
        ({"kind": "render-video"}, "Unknown job kind"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_params_are_422(
    http: httpx.Client, alice: Any, tiny_meeting: SynthMeeting, params: Any, needle: str
) -> None:
    r = submit(http, alice, tiny_meeting.path, params=params)
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_invalid_json_params_is_422(
    http: httpx.Client, alice: Any, tiny_meeting: SynthMeeting
) -> None:
    with open(tiny_meeting.path, "rb") as fh:
        r = http.post(
            JOBS, headers=alice.headers, files={"file": ("a.wav", fh)}, data={"params": "{oops"}
        )
    assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]


def test_unknown_and_foreign_jobs_are_404(
    http: httpx.Client, alice: Any, bob: Any, tiny_meeting: SynthMeeting
) -> None:
    job_id = submit(http, alice, tiny_meeting.path).json()["job_id"]
    for path in (f"{JOBS}/{uuid.uuid4()}", f"{JOBS}/not-a-uuid", f"{JOBS}/{job_id}"):
        r = http.get(path, headers=bob.headers)
        assert r.status_code == 404, path
        assert r.json() == {"detail": "Job not found."}
    assert http.post(f"{JOBS}/{job_id}/cancel", headers=bob.headers).status_code == 404
    assert job_id not in {j["job_id"] for j in http.get(JOBS, headers=bob.headers).json()}
    assert http.get(f"{JOBS}/{job_id}", headers=alice.headers).status_code == 200


def test_requires_sign_in(http: httpx.Client, tiny_meeting: SynthMeeting) -> None:
    assert http.get(f"{JOBS}/{uuid.uuid4()}").status_code == 401
    with open(tiny_meeting.path, "rb") as fh:
        r = http.post(JOBS, files={"file": ("a.wav", fh)})
    assert r.status_code == 401


def test_cancel_queued_then_finished_is_409(
    wait_until: Any,
    http: httpx.Client,
    runtime: Runtime,
    job_settings: JobSettings,
    create_user: Any,
    tiny_meeting: SynthMeeting,
) -> None:
    user = create_user()
    job_id = submit(http, user, tiny_meeting.path).json()["job_id"]
    key = job_rows(runtime, user.id)[0]["storage_path"]
    assert runtime.storage.stat(key) is not None
    r = http.post(f"{JOBS}/{job_id}/cancel", headers=user.headers)
    assert r.status_code == 202 and r.json()["status"] == "CANCELED"
    # No worker will ever need the audio of a job canceled while queued: it is deleted.
    wait_until(lambda: runtime.storage.stat(key) is None, 10, "the input to be deleted")
    again = http.post(f"{JOBS}/{job_id}/cancel", headers=user.headers)
    assert again.status_code == 409 and "already canceled" in again.json()["detail"]

    # A completed job cannot be canceled either.
    done_id = submit(http, user, tiny_meeting.path).json()["job_id"]
    queue = JobQueue(runtime.db, job_settings)
    lease = queue.claim_job(uuid.UUID(done_id), "test-worker")
    assert lease is not None
    result = {"duration": 1.0, "language": "en", "speakers": [], "segments": []}
    assert queue.complete(lease, result, duration_seconds=1, audio_seconds=1)
    r = http.post(f"{JOBS}/{done_id}/cancel", headers=user.headers)
    assert r.status_code == 409 and "already completed" in r.json()["detail"]
    status = http.get(f"{JOBS}/{done_id}", headers=user.headers).json()
    assert status["status"] == "COMPLETED" and status["result"] == result


def test_list_jobs(http: httpx.Client, create_user: Any, tiny_meeting: SynthMeeting) -> None:
    user = create_user()
    ids = [submit(http, user, tiny_meeting.path).json()["job_id"] for _ in range(3)]
    listed = http.get(JOBS, headers=user.headers).json()
    assert [j["job_id"] for j in listed] == list(reversed(ids))  # newest first
    assert all(j["status"] == "QUEUED" and j["kind"] == "transcribe+diarize" for j in listed)
    assert len(http.get(JOBS, params={"limit": 2}, headers=user.headers).json()) == 2
    r = http.get(JOBS, params={"status": "NOPE"}, headers=user.headers)
    assert r.status_code == 422


def test_long_poll_returns_when_the_job_changes(
    http: httpx.Client,
    runtime: Runtime,
    job_settings: JobSettings,
    create_user: Any,
    tiny_meeting: SynthMeeting,
) -> None:
    import threading
    import time

    user = create_user()
    job_id = submit(http, user, tiny_meeting.path).json()["job_id"]
    t0 = time.monotonic()
    r = http.get(f"{JOBS}/{job_id}", params={"wait": 0.6}, headers=user.headers)
    assert r.json()["status"] == "QUEUED" and time.monotonic() - t0 >= 0.5  # held, no news

    queue = JobQueue(runtime.db, job_settings)

    finished: list[bool] = []

    def finish_soon() -> None:
        time.sleep(0.5)
        lease = queue.claim_job(uuid.UUID(job_id), "w")
        assert lease is not None
        finished.append(
            queue.complete(lease, {"segments": []}, duration_seconds=1, audio_seconds=1)
        )

    changer = threading.Thread(target=finish_soon)
    changer.start()
    t0 = time.monotonic()
    r = http.get(f"{JOBS}/{job_id}", params={"wait": 20}, headers=user.headers)
    # Answered at the first change (PROCESSING), well before the 20 s are up.
    assert r.json()["status"] in ("PROCESSING", "COMPLETED") and time.monotonic() - t0 < 10
    # The job changer is done before the module's database goes away (and it did its part).
    changer.join(timeout=30)
    assert finished == [True]
    assert (
        http.get(f"{JOBS}/{job_id}", params={"wait": 31}, headers=user.headers).status_code == 422
    )


def test_status_names_the_workers_stage_and_a_stage_change_ends_a_long_poll(
    http: httpx.Client,
    runtime: Runtime,
    job_settings: JobSettings,
    create_user: Any,
    tiny_meeting: SynthMeeting,
) -> None:
    """The desktop shows which step the server is at (loading the model, finding speakers,
    ...), not "transcribing" throughout: the status answer carries the worker's stage."""
    import threading
    import time

    user = create_user()
    job_id = submit(http, user, tiny_meeting.path).json()["job_id"]
    url = f"{JOBS}/{job_id}"
    queue = JobQueue(runtime.db, job_settings)
    lease = queue.claim_job(uuid.UUID(job_id), "w")
    assert lease is not None
    body = http.get(url, headers=user.headers).json()
    assert body["status"] == "PROCESSING" and body["stage"] == "starting"
    assert {"job_id", "status", "progress", "error", "result"} <= set(body)  # the SPEC's keys

    assert queue.heartbeat(lease, progress=0.3, stage="transcribing").held
    assert http.get(url, headers=user.headers).json()["stage"] == "transcribing"

    # Only the stage changes (same progress): a held status request answers with it at once.
    def next_stage() -> None:
        time.sleep(0.5)
        queue.heartbeat(lease, progress=0.3, stage="diarizing")

    changer = threading.Thread(target=next_stage)
    changer.start()
    t0 = time.monotonic()
    r = http.get(url, params={"wait": 20}, headers=user.headers)
    changer.join(timeout=30)
    body = r.json()
    assert body["stage"] == "diarizing" and body["progress"] == 0.3
    assert time.monotonic() - t0 < 10

    assert queue.complete(lease, {"segments": []}, duration_seconds=1, audio_seconds=1)
    body = http.get(url, headers=user.headers).json()
    assert body["status"] == "COMPLETED" and body["stage"] == "done"
