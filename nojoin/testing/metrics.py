"""Scores for generated meetings: word error rate and a frame-level diarization error rate.

DER here is the standard definition (missed speech + false alarm + speaker confusion, over
reference speech time) computed on 10 ms frames, with the optimal one-to-one mapping between
reference and hypothesis speakers (Hungarian algorithm) and an optional no-score collar around
reference boundaries, as `pyannote.metrics` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

FRAME = 0.01


class _Span(Protocol):
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def speaker(self) -> str | None: ...


def normalize_text(text: str) -> str:
    """Lower case, letters/digits/apostrophes only, single spaces."""
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return " ".join(text.split())


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate after normalising case and punctuation (1.0 when nothing was heard)."""
    import jiwer

    ref = normalize_text(reference)
    hyp = normalize_text(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    if not hyp:
        return 1.0
    return float(jiwer.wer(ref, hyp))


def _frames(spans: Sequence[_Span], n: int) -> tuple[list[str], npt.NDArray[np.bool_]]:
    labels = sorted({str(s.speaker) for s in spans if s.speaker is not None})
    index = {lab: i for i, lab in enumerate(labels)}
    grid = np.zeros((max(len(labels), 1), n), dtype=bool)
    for s in spans:
        if s.speaker is None:
            continue
        a = max(0, int(round(s.start / FRAME)))
        b = min(n, int(round(s.end / FRAME)))
        if b > a:
            grid[index[str(s.speaker)], a:b] = True
    return labels, grid[: len(labels)] if labels else grid[:0]


def der(reference: Sequence[_Span], hypothesis: Sequence[_Span], *, collar: float = 0.0) -> float:
    """Diarization error rate of `hypothesis` against `reference` (spans with start/end/speaker)."""
    from scipy.optimize import linear_sum_assignment

    end = max([s.end for s in reference] + [s.end for s in hypothesis] + [0.0])
    n = int(np.ceil(end / FRAME)) + 1
    _, ref = _frames(reference, n)
    _, hyp = _frames(hypothesis, n)
    scored = np.ones(n, dtype=bool)
    if collar > 0:
        c = int(round(collar / FRAME))
        for s in reference:
            for t in (s.start, s.end):
                k = int(round(t / FRAME))
                scored[max(0, k - c) : k + c] = False
    ref = ref[:, scored]
    hyp = hyp[:, scored]
    ref_count = ref.sum(axis=0)
    hyp_count = hyp.sum(axis=0)
    total = float(ref_count.sum())
    if total == 0:
        return 0.0 if hyp_count.sum() == 0 else 1.0
    missed = np.maximum(ref_count - hyp_count, 0).sum()
    false_alarm = np.maximum(hyp_count - ref_count, 0).sum()
    # Correctly attributed frames under the best speaker mapping.
    if len(ref) and len(hyp):
        overlap = ref.astype(np.int32) @ hyp.T.astype(np.int32)
        rows, cols = linear_sum_assignment(-overlap)
        correct = float(overlap[rows, cols].sum())
    else:
        correct = 0.0
    confusion = np.minimum(ref_count, hyp_count).sum() - correct
    return float((missed + false_alarm + confusion) / total)
