"""WER and DER scoring used by the engine tests and the benchmark."""

from __future__ import annotations

import pytest

from nojoin.processing.diarize import SpeakerTurn as T
from nojoin.testing.metrics import der, normalize_text, wer

REF = [T(0, 10, "alice"), T(10, 20, "bob")]


def test_der_perfect_and_label_independent() -> None:
    assert der(REF, [T(0, 10, "X"), T(10, 20, "Y")]) == pytest.approx(0.0)
    assert der(REF, [T(0, 10, "Y"), T(10, 20, "X")]) == pytest.approx(0.0)


def test_der_counts_confusion_miss_and_false_alarm() -> None:
    assert der(REF, [T(0, 20, "X")]) == pytest.approx(0.5, abs=0.01)  # one speaker for both
    assert der(REF, [T(0, 10, "X")]) == pytest.approx(0.5, abs=0.01)  # bob missed
    assert der(REF, [T(0, 10, "X"), T(10, 25, "Y")]) == pytest.approx(0.25, abs=0.01)  # 5 s extra
    assert der(REF, []) == pytest.approx(1.0)


def test_der_collar_forgives_boundaries() -> None:
    hyp = [T(0, 10.2, "X"), T(10.2, 20, "Y")]
    assert der(REF, hyp) == pytest.approx(0.01, abs=0.002)
    assert der(REF, hyp, collar=0.25) == pytest.approx(0.0)


def test_wer_ignores_case_and_punctuation() -> None:
    assert normalize_text("Hello, World! It's well-known.") == "hello world it's well known"
    assert wer("Hello world.", "hello, world") == 0.0
    assert wer("one two three four", "one two three") == pytest.approx(0.25)
    assert wer("something was said", "") == 1.0
