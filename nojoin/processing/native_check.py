"""Does the speaker engine's native code run on this CPU? Check it, and repair it by building.

senko's PyPI wheel ships `libfbank_extractor.so` compiled with `-march=native` on an AVX-512
machine, so on CPUs without AVX-512 (most AMD Zen 2/3, many Intel desktops) its first feature
extraction dies with SIGILL. The probe runs that code in a child process (a SIGILL cannot be
caught in-process); `--repair` rebuilds senko from its source distribution for this CPU.

    python -m nojoin.processing.native_check            # exit 0 when it runs, 1 when not
    python -m nojoin.processing.native_check --repair   # rebuild from source if needed
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.metadata
import importlib.util
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LIB_NAME = "libfbank_extractor.so"
PROBE_TIMEOUT = 120.0


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str
    illegal_instruction: bool = False


def repair_command() -> list[str]:
    """The pip command that rebuilds senko for this CPU (same version, no other change)."""
    version = importlib.metadata.version("senko")
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--force-reinstall",
        "--no-binary",
        "senko",
        f"senko=={version}",
    ]


def repair_hint() -> str:
    return (
        "The speaker-detection library (senko) was built for newer processors and cannot run "
        "on this CPU. Rebuild it for this computer with: "
        f"{sys.executable} -m nojoin.processing.native_check --repair"
    )


def fbank_library() -> Path | None:
    spec = importlib.util.find_spec("senko")
    if spec is None or not spec.submodule_search_locations:
        return None
    lib = Path(next(iter(spec.submodule_search_locations))) / LIB_NAME
    return lib if lib.exists() else None


def run_fbank_once(lib_path: Path) -> int:
    """Extract features from 4 s of noise with the native library; returns the frame count."""
    import numpy as np

    class FbankFeatures(ctypes.Structure):
        _fields_ = [
            ("data", ctypes.POINTER(ctypes.c_float)),
            ("frames_per_subsegment", ctypes.POINTER(ctypes.c_size_t)),
            ("subsegment_offsets", ctypes.POINTER(ctypes.c_size_t)),
            ("num_subsegments", ctypes.c_size_t),
            ("total_frames", ctypes.c_size_t),
            ("feature_dim", ctypes.c_size_t),
        ]

    lib = ctypes.CDLL(str(lib_path))
    lib.create_fbank_extractor.restype = ctypes.c_void_p
    lib.destroy_fbank_extractor.argtypes = [ctypes.c_void_p]
    lib.extract_fbank_features_from_memory.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_float),
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_float),
        ctypes.c_size_t,
    ]
    lib.extract_fbank_features_from_memory.restype = FbankFeatures
    lib.free_fbank_features.argtypes = [ctypes.POINTER(FbankFeatures)]

    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(16000 * 4) * 0.1).astype(np.float32)
    subsegments = np.array([[s, s + 1.5] for s in (0.0, 0.75, 1.5, 2.25)], dtype=np.float32)
    flat = subsegments.flatten()
    extractor = lib.create_fbank_extractor()
    try:
        features = lib.extract_fbank_features_from_memory(
            extractor,
            audio.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            len(audio),
            flat.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
            len(subsegments),
        )
        frames = int(features.total_frames)
        lib.free_fbank_features(ctypes.byref(features))
    finally:
        lib.destroy_fbank_extractor(extractor)
    return frames


def probe(lib: Path | None = None) -> ProbeResult:
    """Run the native feature extraction (installed senko's, or `lib`) in a child process and
    report how it ended."""
    lib = lib or fbank_library()
    if lib is None:
        return ProbeResult(False, "senko is not installed (pip install 'nojoin[ml]')")
    proc = subprocess.run(
        [sys.executable, "-m", "nojoin.processing.native_check", "--child", str(lib)],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT,
    )
    if proc.returncode == 0:
        return ProbeResult(True, proc.stdout.strip())
    if proc.returncode == -signal.SIGILL:
        return ProbeResult(False, f"{lib} uses instructions this CPU lacks (SIGILL)", True)
    return ProbeResult(False, f"probe failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nojoin.processing.native_check")
    ap.add_argument("--repair", action="store_true", help="rebuild senko from source if needed")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        frames = run_fbank_once(args.child)
        sys.stdout.write(f"native feature extraction works ({frames} frames)\n")
        return 0 if frames > 0 else 1

    result = probe()
    sys.stdout.write(f"senko: {result.detail}\n")
    if result.ok or not args.repair or not result.illegal_instruction:
        return 0 if result.ok else 1
    sys.stdout.write("senko: rebuilding from source for this CPU (about a minute)\n")
    sys.stdout.flush()
    subprocess.run(repair_command(), check=True)
    result = probe()
    sys.stdout.write(f"senko: {result.detail}\n")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
