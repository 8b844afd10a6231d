"""Re-pin constraints.txt to the versions installed in this venv (`make lock`).

Keeps the file's header (everything up to the line that mentions `make lock`, including the
torch pin) and replaces the pins below it with `pip freeze` of this environment, leaving out
torch (pinned in the header) and the project itself.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"


def main() -> int:
    lines = CONSTRAINTS.read_text(encoding="utf-8").splitlines()
    end = next((i for i, line in enumerate(lines) if "make lock" in line), None)
    if end is None:
        sys.stderr.write(f"{CONSTRAINTS}: no header line mentioning 'make lock'\n")
        return 1
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    pins = sorted(
        (p for p in frozen if p and not p.lower().startswith("torch==") and " @ " not in p),
        key=str.lower,
    )
    CONSTRAINTS.write_text("\n".join([*lines[: end + 1], *pins]) + "\n", encoding="utf-8")
    sys.stdout.write(f"{CONSTRAINTS.name}: {len(pins)} pins\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
