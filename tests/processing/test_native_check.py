"""The native-code probe: the installed speaker engine runs here, and a library that dies on an
illegal instruction is recognised (by a real SIGILL in a child process) with the fix to run."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from nojoin.processing import native_check
from nojoin.processing.strategies.local_strategy import _crash_message


def test_installed_senko_runs_on_this_cpu() -> None:
    # `make setup` repairs it when the wheel's code cannot run here; this proves it did.
    result = native_check.probe()
    assert result.ok, result.detail
    assert "frames" in result.detail


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler (gcc)")
def test_a_library_with_instructions_this_cpu_lacks_is_recognised(tmp_path: Path) -> None:
    # Same entry points as senko's library; the extraction traps (ud2 -> SIGILL), as the
    # AVX-512 build does on a CPU without AVX-512.
    src = tmp_path / "fake.c"
    src.write_text(
        "typedef struct { float *d; unsigned long *f, *o; unsigned long n, t, dim; } F;\n"
        "void *create_fbank_extractor(void) { return (void *)1; }\n"
        "void destroy_fbank_extractor(void *p) { (void)p; }\n"
        "void free_fbank_features(F *f) { (void)f; }\n"
        "F extract_fbank_features_from_memory(void *e, float *a, unsigned long n, float *s,"
        " unsigned long k) { __builtin_trap(); }\n"
    )
    lib = tmp_path / native_check.LIB_NAME
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(lib), str(src)], check=True)

    result = native_check.probe(lib)

    assert not result.ok and result.illegal_instruction
    assert "SIGILL" in result.detail


def test_an_engine_killed_by_sigill_says_how_to_repair() -> None:
    message = _crash_message(-signal.SIGILL, "diarizing")
    assert "SIGILL" in message and "diarizing" in message
    assert "native_check --repair" in message
    assert "out of memory" not in message
