"""`python -m nojoin` is the same as the `nojoin` command."""

from __future__ import annotations

import multiprocessing

from nojoin.cli import main

if __name__ == "__main__":
    # A frozen (PyInstaller) app re-enters here in the engine's spawned worker process.
    multiprocessing.freeze_support()
    raise SystemExit(main())
