"""Billing settings (NOJOIN_* environment variables): Stripe keys, the tier gate, quotas.

Kept beside the billing code rather than in backend/settings.py so the billing domain owns its
knobs; the prefix and loading rules are the same (pydantic-settings, `NOJOIN_`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1024 * 1024


class BillingSettings(BaseSettings):
    """All billing configuration. Secrets are SecretStr so they never reach reprs or logs."""

    model_config = SettingsConfigDict(env_prefix="NOJOIN_", extra="ignore")

    # --- Stripe ---
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # The recurring Price of the Pro plan (price_...).
    stripe_price_id: str | None = None
    # Signed webhook timestamps older than this are refused (replay window).
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1)
    # "auto": Stripe when NOJOIN_STRIPE_API_KEY is set, else the offline provider.
    billing_provider: Literal["auto", "stripe", "offline"] = "auto"
    # Where Stripe sends the browser after checkout / the portal. Default: pages on this server.
    checkout_success_url: str | None = None
    checkout_cancel_url: str | None = None
    portal_return_url: str | None = None

    # --- tier gate ---
    # None: on exactly when Stripe is configured (SPEC: the embedded default has no gate).
    require_subscription: bool | None = None
    # Days a Pro subscriber keeps cloud processing after a renewal payment fails while Stripe
    # retries the card (Stripe status `past_due`); 0: cut off at once. Capped at a year.
    billing_past_due_grace_days: int = Field(default=7, ge=0, le=365)

    # --- quotas (per tier) ---
    # None: quotas apply exactly when the tier gate does (the embedded, single-user default
    # has neither); true: enforce them on a server without subscriptions too.
    enforce_quotas: bool | None = None
    quota_free_jobs_per_day: int = Field(default=25, ge=0)
    quota_pro_jobs_per_day: int = Field(default=200, ge=0)
    quota_free_max_file_bytes: int = Field(default=500 * MB, ge=0)
    quota_pro_max_file_bytes: int = Field(default=2048 * MB, ge=0)

    # --- operator ---
    # Bearer key for GET /api/v1/billing/admin/usage; unset -> the endpoint answers 404.
    operator_api_key: SecretStr | None = None

    @property
    def stripe_configured(self) -> bool:
        return self.stripe_api_key is not None

    @property
    def provider_name(self) -> Literal["stripe", "offline"]:
        if self.billing_provider == "auto":
            return "stripe" if self.stripe_configured else "offline"
        return self.billing_provider

    @property
    def past_due_grace(self) -> timedelta:
        return timedelta(days=self.billing_past_due_grace_days)

    @property
    def gate_enabled(self) -> bool:
        if self.require_subscription is not None:
            return self.require_subscription
        return self.stripe_configured

    @property
    def quotas_enabled(self) -> bool:
        if self.enforce_quotas is not None:
            return self.enforce_quotas
        return self.gate_enabled

    def jobs_per_day(self, tier: str) -> int:
        return self.quota_pro_jobs_per_day if tier == "pro" else self.quota_free_jobs_per_day

    def max_file_bytes(self, tier: str) -> int:
        return self.quota_pro_max_file_bytes if tier == "pro" else self.quota_free_max_file_bytes

    def check(self) -> None:
        """Raise ValueError for settings that cannot work together (checked at start-up, so a
        misconfiguration stops the server with this message instead of failing a request)."""
        if self.provider_name == "stripe" and self.stripe_api_key is None:
            raise ValueError("NOJOIN_BILLING_PROVIDER=stripe needs NOJOIN_STRIPE_API_KEY.")
        if self.stripe_configured and not self.stripe_price_id:
            raise ValueError("NOJOIN_STRIPE_API_KEY is set but NOJOIN_STRIPE_PRICE_ID is not.")
        if self.stripe_configured and self.stripe_webhook_secret is None:
            raise ValueError(
                "NOJOIN_STRIPE_API_KEY is set but NOJOIN_STRIPE_WEBHOOK_SECRET is not: "
                "subscriptions could never be activated."
            )
