"""The backend's composition root: everything the app holds for its lifetime, built once.

`Runtime.start(settings)` starts embedded PostgreSQL when no NOJOIN_DATABASE_URL is set, opens
the pool, applies migrations and builds every domain's service as a typed field (`auth`,
`config`, `backups`, `billing`, `webhooks`, `jobs`). Endpoints reach a service through one
`Annotated` dependency per service in the domain's `dependencies.py` (`BillingServiceDep`,
`JobServiceDep`, ...), which reads the field from `RuntimeDep`; services take the request's
session (`SessionDep`) per call and build repositories from it. Tests swap a service by
assigning the field (`monkeypatch.setattr(runtime, "billing", ...)`).
The jobs dispatcher (worker thread, maintenance loop) runs while an app's lifespan runs:
`start_jobs()` / `stop_jobs()`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from jwt import PyJWK

from backend.auth.keys import SigningKeys, load_or_create_anon_key, load_or_create_keys
from backend.auth.mailer import FileMailer, Mailer, OutboxMailer
from backend.auth.service import AuthService
from backend.auth.verifier import TokenVerifier
from backend.backups.service import BackupService
from backend.billing.service import BillingService
from backend.billing.settings import BillingSettings
from backend.billing.webhooks import StripeWebhookService
from backend.config.service import ConfigService
from backend.db import Database
from backend.embedded import EmbeddedPostgres, start_embedded
from backend.jobs.admission import AdmissionChain, JobAdmission, UploadLimitAdmission
from backend.jobs.dispatch import JobDispatcher
from backend.jobs.service import JobService
from backend.jobs.settings import JobSettings
from backend.jobs.worker import EngineFactory, local_engine
from backend.migrations import apply_migrations
from backend.settings import Settings
from backend.storage.base import StorageProvider
from backend.storage.factory import build_storage

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    storage: StorageProvider
    verifier: TokenVerifier
    config: ConfigService
    backups: BackupService
    billing: BillingService
    webhooks: StripeWebhookService
    jobs: JobService
    keys: SigningKeys | None = None
    anon_key: str | None = None
    mailer: Mailer | None = None
    auth: AuthService | None = None  # the built-in auth server (embedded mode) only
    embedded: EmbeddedPostgres | None = None
    # The engine the in-process worker runs (embedded dispatch); tests may swap it.
    engine_factory: EngineFactory = local_engine
    dispatcher: JobDispatcher | None = None  # while an app's lifespan runs

    @classmethod
    def start(
        cls,
        settings: Settings,
        *,
        billing_settings: BillingSettings | None = None,
        job_settings: JobSettings | None = None,
    ) -> Runtime:
        """Start from `settings`; the billing and job settings come from the NOJOIN_*
        environment unless given."""
        billing_settings = billing_settings or BillingSettings()
        # Before anything starts: a misconfiguration stops start-up with its message.
        billing_settings.check()
        if (
            settings.jwks_url
            and not settings.builtin_auth_enabled
            and settings.jwt_secret is None
            and settings.issuer is None
        ):
            # Without an issuer check any token signed by a key in that JWKS would pass,
            # whoever issued it; refuse to start rather than silently skip the check.
            raise RuntimeError(
                f"Cannot tell the token issuer from NOJOIN_JWKS_URL={settings.jwks_url!r} (it "
                "does not end in /.well-known/jwks.json): set NOJOIN_JWT_ISSUER to the `iss` of "
                "its tokens (for Supabase: https://<ref>.supabase.co/auth/v1)."
            )
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        embedded: EmbeddedPostgres | None = None
        url = settings.database_url
        if url is None:
            embedded, url = start_embedded(settings.data_dir)
        try:
            if settings.run_migrations:
                applied = apply_migrations(url)
                if applied:
                    logger.info("Applied migrations: %s", ", ".join(applied))
            db = Database(url, min_size=settings.db_pool_min, max_size=settings.db_pool_max)
            db.open()
        except BaseException:
            if embedded is not None:
                embedded.stop()
            raise

        keys: SigningKeys | None = None
        anon_key: str | None = None
        mailer: Mailer | None = None
        issuer = settings.issuer
        if settings.builtin_auth_enabled:
            auth_dir = settings.data_dir / "auth"
            pem = settings.jwt_private_key
            keys = load_or_create_keys(
                auth_dir, pem.get_secret_value().encode() if pem is not None else None
            )
            assert issuer is not None
            anon_key = load_or_create_anon_key(auth_dir, keys, issuer)
            verifier = TokenVerifier(
                audience=settings.jwt_audience,
                issuer=issuer,
                leeway=settings.jwt_leeway_seconds,
                static_keys=[PyJWK(keys.public_jwk)],
            )
            mailer = (
                FileMailer(settings.data_dir / "mail")
                if settings.mailer == "file"
                else OutboxMailer()
            )
        elif settings.jwt_secret is not None:
            verifier = TokenVerifier(
                audience=settings.jwt_audience,
                issuer=issuer,
                leeway=settings.jwt_leeway_seconds,
                hs256_secret=settings.jwt_secret.get_secret_value(),
            )
        elif settings.jwks_url:
            verifier = TokenVerifier(
                audience=settings.jwt_audience,
                issuer=issuer,
                leeway=settings.jwt_leeway_seconds,
                jwks_url=settings.jwks_url,
                jwks_cache_seconds=settings.jwks_cache_seconds,
            )
        else:
            db.close()
            if embedded is not None:
                embedded.stop()
            raise RuntimeError(
                "No way to verify sign-ins: set NOJOIN_JWKS_URL (Supabase JWKS), or "
                "NOJOIN_JWT_SECRET (HS256), or NOJOIN_BUILTIN_AUTH=true."
            )
        if settings.anon_key is not None and anon_key is None:
            anon_key = settings.anon_key.get_secret_value()
        storage = build_storage(settings)
        auth = AuthService(settings, keys, mailer) if keys is not None and mailer else None
        billing = BillingService.from_settings(billing_settings)
        logger.info(
            "Billing: provider=%s, subscription required=%s",
            billing.provider.name,
            billing_settings.gate_enabled,
        )
        return cls(
            auth=auth,
            settings=settings,
            db=db,
            storage=storage,
            verifier=verifier,
            config=ConfigService(settings.config_max_bytes),
            backups=BackupService(settings, storage),
            billing=billing,
            webhooks=StripeWebhookService(),
            jobs=JobService(job_settings or JobSettings(), db, storage),
            keys=keys,
            anon_key=anon_key,
            mailer=mailer,
            embedded=embedded,
        )

    @property
    def job_admission(self) -> JobAdmission:
        """Who may submit a job now: the server's upload limit, then billing's tier gate and
        quotas. Composed on each use, so a swapped `jobs` or `billing` takes effect at once."""
        return AdmissionChain([UploadLimitAdmission(self.jobs.settings), self.billing])

    def start_jobs(self) -> JobDispatcher:
        """Start dispatch for this process (the app's lifespan calls it)."""
        if self.dispatcher is None:
            self.dispatcher = JobDispatcher(
                self.db,
                self.storage,
                self.jobs.settings,
                self.settings.data_dir,
                engine_factory=self.engine_factory,
            ).start()
        return self.dispatcher

    def stop_jobs(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
            self.dispatcher = None

    def stop(self) -> None:
        self.stop_jobs()
        self.db.close()
        if self.embedded is not None:
            self.embedded.stop()


async def get_runtime(request: Request) -> Runtime:
    # async: a trivial lookup must not cost a threadpool hop per request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def public_base_url(request: Request, runtime: RuntimeDep) -> str:
    """Where links this server hands out point: NOJOIN_PUBLIC_URL, else the address the
    request came to."""
    return runtime.settings.public_url or str(request.base_url)


BaseURLDep = Annotated[str, Depends(public_base_url)]
