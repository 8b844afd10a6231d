"""The account's subscription through the backend's billing API (Qt-free, blocking).

`BillingClient` wraps `ApiClient` for `/api/v1/billing/*`; the Account dialog takes anything
with the same methods (`AccountService`), so its tests use a fake.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from nojoin.cloud.api_client import ApiClient
from nojoin.cloud.errors import CloudError


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """GET /api/v1/billing/subscription."""

    tier: str  # "free" | "pro"
    status: str  # "active" | "trialing" | "past_due" | "canceled"
    entitled: bool  # the plan includes cloud processing right now
    current_period_end: datetime | None
    cancel_at_period_end: bool
    can_manage: bool  # a billing account exists: the portal can open
    gate_enabled: bool  # the server requires a subscription for cloud processing
    provider: str  # "stripe" | "offline"
    quotas_enforced: bool
    jobs_today: int
    jobs_per_day: int
    max_file_bytes: int
    # While a failed renewal is retried, cloud processing keeps working until this time.
    grace_until: datetime | None = None

    @classmethod
    def from_json(cls, data: Any) -> AccountStatus:
        if not isinstance(data, dict):
            raise CloudError("Nojoin Cloud sent an unreadable account status. Try again later.")
        try:
            end = data.get("current_period_end")
            grace = data.get("grace_until")
            return cls(
                tier=str(data["tier"]),
                status=str(data["status"]),
                entitled=bool(data["entitled"]),
                current_period_end=_timestamp(end) if isinstance(end, str) else None,
                cancel_at_period_end=bool(data.get("cancel_at_period_end", False)),
                can_manage=bool(data.get("can_manage", False)),
                gate_enabled=bool(data.get("gate_enabled", False)),
                provider=str(data.get("provider", "stripe")),
                quotas_enforced=bool(data.get("quotas_enforced", False)),
                jobs_today=int(data.get("jobs_today", 0)),
                jobs_per_day=int(data.get("jobs_per_day", 0)),
                max_file_bytes=int(data.get("max_file_bytes", 0)),
                grace_until=_timestamp(grace) if isinstance(grace, str) else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CloudError(
                "Nojoin Cloud sent an unreadable account status. Try again later."
            ) from exc


def _timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class AccountService(Protocol):
    """What the Account dialog needs. Blocking; the dialog calls it off the UI thread."""

    def subscription(self) -> AccountStatus: ...

    def checkout_url(self, idempotency_key: str) -> str: ...

    def portal_url(self, idempotency_key: str) -> str: ...


class BillingClient:
    """`AccountService` over the backend API."""

    def __init__(self, api: ApiClient) -> None:
        self._api = api

    def subscription(self) -> AccountStatus:
        return AccountStatus.from_json(self._api.request("GET", "/billing/subscription").json())

    def checkout_url(self, idempotency_key: str) -> str:
        return self._url("/billing/create-checkout-session", idempotency_key)

    def portal_url(self, idempotency_key: str) -> str:
        return self._url("/billing/create-portal-session", idempotency_key)

    def _url(self, path: str, idempotency_key: str) -> str:
        response = self._api.request(
            "POST", path, headers={"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        )
        url = response.json().get("url") if response.content else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise CloudError("Nojoin Cloud did not return a page to open. Try again later.")
        return url
