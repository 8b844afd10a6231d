"""Recorder cost: CPU use (fraction of one core) and gaps while recording mic + system audio.

Starts a private PulseAudio daemon (scripts/pulse-test-env.sh), feeds pink noise into both the
virtual microphone and the default speaker for the whole run, records with `Recorder` and
prints the figures. Default: a 20 s run; `--long` records 10 minutes.

    .venv/bin/python benchmarks/bench_recorder.py [--seconds N | --long]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def feed(sink: str, seconds: float, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Pink noise into `sink` through sox | pacat (separate processes, not counted as ours)."""
    sox = subprocess.Popen(
        [
            "sox",
            "-n",
            "-r",
            "48000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed",
            "-t",
            "raw",
            "-",
            "synth",
            str(seconds),
            "pinknoise",
            "vol",
            "0.2",
        ],
        stdout=subprocess.PIPE,
    )
    pacat = subprocess.Popen(
        ["pacat", "--playback", "-d", sink, "--format=s16le", "--rate=48000", "--channels=1"],
        stdin=sox.stdout,
        env=env,
    )
    assert sox.stdout is not None
    sox.stdout.close()
    return pacat


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--long", action="store_true", help="record 10 minutes")
    args = ap.parse_args()
    seconds = 600.0 if args.long else args.seconds

    tmp = Path(tempfile.mkdtemp(prefix="nojoin-bench-rec-"))
    pulse_dir = tmp / "pulse"
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pulse-test-env.sh"), "start", str(pulse_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    server = out.stdout.strip().split("=", 1)[1]
    os.environ["PULSE_SERVER"] = server
    os.environ["NOJOIN_DATA_DIR"] = str(tmp / "data")
    env = {**os.environ}
    feeders: list[subprocess.Popen[bytes]] = []
    try:
        from nojoin.audio.recorder import Recorder, RecorderEvents

        class Count(RecorderEvents):
            n = 0

            def levels(self, levels: object) -> None:
                self.n += 1

        counter = Count()
        feeders = [
            feed("nojoin_micfeed", seconds + 5, env),
            feed("nojoin_speaker", seconds + 5, env),
        ]
        rec = Recorder(tmp / "bench.wav", listener=counter)
        t_start = time.monotonic()
        rec.start()
        start_latency = time.monotonic() - t_start
        c0, w0 = cpu_seconds(), time.monotonic()
        next_report = w0 + 60
        while time.monotonic() - w0 < seconds:
            time.sleep(0.2)
            if time.monotonic() >= next_report:
                next_report += 60
                print(f"  ... {rec.elapsed:6.0f} s recorded, gaps {rec.gaps}", file=sys.stderr)
        c1, w1 = cpu_seconds(), time.monotonic()
        result = rec.stop()
        wall = w1 - w0
        assert result.path is not None
        size = result.path.stat().st_size
        print(f"recorder benchmark: {seconds:.0f} s of mic + system audio at 48 kHz")
        print(f"  start-up (devices open, audio flowing): {start_latency:.2f} s")
        print(f"  CPU: {c1 - c0:.2f} s over {wall:.1f} s wall = {(c1 - c0) / wall:.3f} of one core")
        print(f"  recorded/wall ratio: {result.duration / (wall):.4f} ({result.duration:.2f} s)")
        print(
            f"  gaps: {result.gaps} ({result.gap_seconds:.2f} s), drift corrections: "
            f"{result.drift_corrections}"
        )
        print(f"  level events: {counter.n / wall:.1f} per s")
        print(f"  file: {size / 1e6:.1f} MB ({size / result.duration / 1e3:.0f} kB/s)")
        return 0 if result.gaps == 0 else 1
    finally:
        for f in feeders:
            f.kill()
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "pulse-test-env.sh"), "stop", str(pulse_dir)]
        )
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
