"""The FastAPI app factory and the `nojoin-backend` command.

`create_app(settings)` mounts every domain's router (listed in `_routers`) over one `Runtime`
(backend/runtime.py, which builds the services) and runs the jobs dispatcher while the app's
lifespan runs. With no NOJOIN_DATABASE_URL the backend runs fully embedded: PostgreSQL in the
data dir, local file storage, built-in auth at /auth/v1.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from fastapi import APIRouter, FastAPI

from backend.errors import add_exception_handlers
from backend.logsetup import setup_logging
from backend.middleware import BodySizeLimitMiddleware, RequestLogMiddleware
from backend.runtime import Runtime
from backend.settings import Settings
from backend.storage.local import ROUTE_PREFIX as STORAGE_ROUTE_PREFIX

logger = logging.getLogger(__name__)

__version__ = "0.1.0"


def _routers(settings: Settings) -> list[APIRouter]:
    """Every domain's router. Add yours here (imports stay local: cheap CLI start-up)."""
    from backend.auth.endpoints import router as auth_router
    from backend.backups.endpoints import router as backups_router
    from backend.billing.endpoints import router as billing_router
    from backend.config.endpoints import router as config_router
    from backend.health import router as health_router
    from backend.jobs.endpoints import router as jobs_router
    from backend.storage.endpoints import router as storage_router

    routers = [health_router, storage_router, billing_router, jobs_router]
    routers += [config_router, backups_router]
    if settings.builtin_auth_enabled:
        routers.append(auth_router)
    return routers


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. Without `runtime` the app starts and stops its own in the lifespan;
    tests and `main()` pass one they own."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned: Runtime | None = None
        if getattr(app.state, "runtime", None) is None:
            owned = await anyio.to_thread.run_sync(Runtime.start, settings)
            app.state.runtime = owned
        current: Runtime = app.state.runtime
        await anyio.to_thread.run_sync(current.start_jobs)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(current.stop_jobs)
            if owned is not None:
                await anyio.to_thread.run_sync(owned.stop)
                app.state.runtime = None

    app = FastAPI(
        title="Nojoin backend",
        version=__version__,
        lifespan=lifespan,
        description="Accounts, config sync, backups and remote processing for Nojoin.",
    )
    app.state.runtime = runtime  # the one handle endpoints reach everything through
    add_exception_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        # The jobs upload streams to disk and enforces its own limit.
        exempt_prefixes=(STORAGE_ROUTE_PREFIX, "/api/v1/jobs"),
    )
    app.add_middleware(RequestLogMiddleware)
    for router in _routers(settings):
        app.include_router(router)
    return app


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="nojoin-backend",
        description="Run the Nojoin API. With no NOJOIN_DATABASE_URL it starts embedded "
        "PostgreSQL, local storage and built-in auth in the data dir.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the embedded database, keys and stored objects live "
        "(default: NOJOIN_BACKEND_DATA_DIR, else <NOJOIN_DATA_DIR>/backend)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    import uvicorn

    overrides = {"data_dir": args.data_dir.expanduser().resolve()} if args.data_dir else {}
    try:
        settings = Settings(**overrides)
        setup_logging(args.log_level, settings.log_format)
        runtime = Runtime.start(settings)
    except Exception as exc:
        sys.stderr.write(f"nojoin-backend: could not start: {exc}\n")
        return 1
    try:
        app = create_app(settings, runtime=runtime)
        base = f"http://{args.host}:{args.port}"
        lines = [f"Nojoin backend on {base}  (data: {settings.data_dir})"]
        if runtime.anon_key and settings.builtin_auth_enabled:
            # The anon key is public by design (Supabase ships it in every client).
            lines.append(f"Built-in auth at {base}/auth/v1")
            lines.append(f"NOJOIN_ANON_KEY={runtime.anon_key}")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        # Requests are logged by RequestLogMiddleware (with request ids, without query
        # strings that may hold URL signatures): uvicorn's access log stays off.
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the handler
        # that was installed before it: make that one unwind through `finally` so the
        # embedded PostgreSQL is stopped too, instead of the default (die on the spot).
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    except _Terminated:
        pass
    finally:
        runtime.stop()
    return 0


class _Terminated(Exception):
    """SIGTERM arrived after uvicorn's graceful shutdown."""


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    raise _Terminated()


if __name__ == "__main__":
    raise SystemExit(main())
