"""Request bodies of the GoTrue-compatible endpoints (extra fields the client sends, such as
gotrue_meta_security or code_challenge, are accepted and ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SignupBody(_Body):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = None
    password: str | None = Field(default=None, max_length=1024)
    data: dict[str, Any] | None = None


class TokenBody(_Body):
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = None
    password: str | None = Field(default=None, max_length=1024)
    refresh_token: str | None = Field(default=None, max_length=512)


class RecoverBody(_Body):
    email: str | None = Field(default=None, max_length=320)


class VerifyBody(_Body):
    type: str
    token_hash: str | None = Field(default=None, max_length=512)
    email: str | None = Field(default=None, max_length=320)
    token: str | None = Field(default=None, max_length=64)


class UpdateUserBody(_Body):
    email: str | None = Field(default=None, max_length=320)
    password: str | None = Field(default=None, max_length=1024)
    data: dict[str, Any] | None = None
