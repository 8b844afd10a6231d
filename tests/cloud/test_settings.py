"""Where the app finds Nojoin Cloud: packaged addresses, environment overrides, the anon key
from the embedded backend's /health, and a clear message when a build has no address."""

from __future__ import annotations

import pytest
from cloud_support import Backend

from nojoin.cloud.auth_service import AuthService
from nojoin.cloud.errors import CloudNotConfiguredError
from nojoin.cloud.settings import discover_anon_key, load_cloud_settings


def test_packaged_build_without_an_address_says_cloud_mode_is_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NOJOIN_CLOUD_URL", "NOJOIN_CLOUD_AUTH_URL", "NOJOIN_CLOUD_ANON_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_cloud_settings()
    assert not settings.configured
    auth = AuthService(settings)
    with pytest.raises(CloudNotConfiguredError, match="Local Mode works as usual"):
        auth.sign_in("alice@example.com", "whatever password")
    auth.close()


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOJOIN_CLOUD_URL", "http://127.0.0.1:8000/")
    monkeypatch.setenv("NOJOIN_CLOUD_ANON_KEY", "anon")
    s = load_cloud_settings()
    assert (s.api_url, s.auth_url, s.anon_key) == ("http://127.0.0.1:8000",) * 2 + ("anon",)
    monkeypatch.setenv("NOJOIN_CLOUD_AUTH_URL", "https://project.supabase.co")
    s = load_cloud_settings()
    assert (s.api_url, s.auth_url) == ("http://127.0.0.1:8000", "https://project.supabase.co")
    assert s.server_id == "project.supabase.co"


def test_anon_key_is_discovered_from_the_embedded_backend(backend: Backend) -> None:
    assert discover_anon_key(backend.url) == backend.anon_key
