"""The desktop Pipeline in mode "remote" against the real backend (embedded worker, tiny.en):
what the app runs when Settings say "Nojoin Cloud". The strategy's own round trips are in
test_jobs_embedded.py; here the meeting's outcome in the library is what counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.billing.service import NEEDS_SUBSCRIPTION, BillingService
from backend.billing.settings import BillingSettings
from backend.runtime import Runtime
from nojoin.library import Library
from nojoin.models import MeetingStatus
from nojoin.processing.contract import ProcessingOptions, Progress
from nojoin.processing.pipeline import Pipeline
from nojoin.processing.strategies.remote_strategy import (
    StaticConnection,
    SubscriptionRequiredError,
)
from nojoin.testing.synth import SynthMeeting

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def job_settings_overrides() -> dict[str, Any]:
    return {"job_dispatch": "embedded"}


@pytest.fixture
def library(tmp_path: Path) -> Iterator[Library]:
    lib = Library(tmp_path / "library.sqlite3")
    yield lib
    lib.close()


@pytest.fixture
def signed_in(live_server: str, create_user: Callable[..., Any]) -> Iterator[Any]:
    """A free account's session, as the app's CloudConnection gives it to the pipeline."""
    user = create_user()
    yield user, StaticConnection(live_server, user.token)


def test_remote_mode_stores_the_servers_transcript(
    library: Library, signed_in: Any, tiny_meeting: SynthMeeting
) -> None:
    m = library.add_meeting("Report", audio_path=tiny_meeting.path)
    reports: list[Progress] = []
    _user, connection = signed_in
    # The app's factories: "remote" = the jobs API over the connection it is given.
    with Pipeline(library, remote_connection=connection) as pipeline:
        transcript = pipeline.process_meeting(
            m.id, ProcessingOptions(model="tiny.en", diarize=False), reports.append, mode="remote"
        )
    assert "report" in transcript.text.lower()
    stored = library.get_meeting(m.id)
    assert stored.status is MeetingStatus.PROCESSED and stored.error is None
    assert library.get_transcript(m.id).text == transcript.text
    assert library.search("report")
    assert reports[0].stage == "uploading" and reports[-1].stage == "done"


@pytest.fixture
def gated(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The backend as started with NOJOIN_REQUIRE_SUBSCRIPTION=true: its billing service
    built from the environment, as `Runtime.start` builds it."""
    monkeypatch.setenv("NOJOIN_REQUIRE_SUBSCRIPTION", "true")
    monkeypatch.setattr(runtime, "billing", BillingService.from_settings(BillingSettings()))
    yield


@pytest.mark.usefixtures("gated")
def test_free_user_on_a_gated_backend_gets_the_servers_message(
    library: Library, signed_in: Any, runtime: Runtime, tiny_meeting: SynthMeeting
) -> None:
    m = library.add_meeting("Gated", audio_path=tiny_meeting.path)
    user, connection = signed_in
    with (
        Pipeline(library, remote_connection=connection) as pipeline,
        pytest.raises(SubscriptionRequiredError) as err,
    ):
        pipeline.process_meeting(m.id, ProcessingOptions(model="tiny.en"), mode="remote")
    assert err.value.status_code == 403 and err.value.message == NEEDS_SUBSCRIPTION
    stored = library.get_meeting(m.id)
    assert stored.status is MeetingStatus.ERROR and stored.error == NEEDS_SUBSCRIPTION
    # Refused before any job was queued.
    with runtime.db.transaction() as conn:
        row = conn.execute(
            "SELECT count(*) AS n FROM public.jobs WHERE user_id = %s", (user.id,)
        ).fetchone()
    assert row["n"] == 0
