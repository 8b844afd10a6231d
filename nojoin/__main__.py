"""`python -m nojoin` is the same as the `nojoin` command."""

from __future__ import annotations

from nojoin.cli import main

raise SystemExit(main())
