"""/auth/v1: the subset of Supabase Auth (GoTrue) that supabase-py uses, served by the
built-in auth server in embedded mode. Requests need the `apikey` header (the anon key)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from backend.auth.dependencies import bearer_token
from backend.auth.schemas import RecoverBody, SignupBody, TokenBody, UpdateUserBody, VerifyBody
from backend.auth.service import AuthService
from backend.auth.verifier import AuthUser
from backend.db import SessionDep
from backend.errors import (
    SUPABASE_API_VERSION,
    BadRequestError,
    NotFoundError,
    UnauthorizedError,
    ValidationFailedError,
)
from backend.runtime import RuntimeDep

_HEADERS = {"X-Supabase-Api-Version": SUPABASE_API_VERSION, "Cache-Control": "no-store"}


async def require_apikey(
    runtime: RuntimeDep, apikey: Annotated[str | None, Header()] = None
) -> AuthService:
    """The built-in server and the anon key; 401 without a matching `apikey` header."""
    if runtime.auth is None or runtime.anon_key is None:
        raise NotFoundError("The built-in auth server is not enabled.")
    if not apikey or not hmac.compare_digest(apikey.encode(), runtime.anon_key.encode()):
        raise UnauthorizedError("No valid API key found in request", code="no_api_key")
    return runtime.auth


AuthServiceDep = Annotated[AuthService, Depends(require_apikey)]


async def _caller(runtime: RuntimeDep, token: Annotated[str, Depends(bearer_token)]) -> AuthUser:
    return runtime.verifier.verify(token)


CallerDep = Annotated[AuthUser, Depends(_caller)]


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_HEADERS)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _base_url(runtime: RuntimeDep, request: Request) -> str:
    return runtime.settings.public_url or str(request.base_url)


router = APIRouter(prefix="/auth/v1", tags=["auth"])


@router.get("/.well-known/jwks.json")
def jwks(runtime: RuntimeDep) -> JSONResponse:
    if runtime.keys is None:
        raise NotFoundError("The built-in auth server is not enabled.")
    return JSONResponse(runtime.keys.jwks, headers={"Cache-Control": "public, max-age=600"})


@router.post("/signup")
def signup(
    body: SignupBody, request: Request, auth: AuthServiceDep, conn: SessionDep
) -> JSONResponse:
    if body.phone and not body.email:
        raise ValidationFailedError(
            "Phone signups are not supported.", code="phone_provider_disabled"
        )
    return _json(auth.signup(conn, body.email, body.password, body.data or {}, _client_ip(request)))


@router.post("/token")
def token(
    body: TokenBody,
    request: Request,
    auth: AuthServiceDep,
    conn: SessionDep,
    grant_type: Annotated[str, Query()],
) -> JSONResponse:
    if grant_type == "password":
        if body.phone and not body.email:
            raise ValidationFailedError(
                "Phone logins are not supported.", code="phone_provider_disabled"
            )
        return _json(auth.password_grant(conn, body.email, body.password, _client_ip(request)))
    if grant_type == "refresh_token":
        return _json(auth.refresh_grant(conn, body.refresh_token))
    raise BadRequestError(
        "unsupported_grant_type: use password or refresh_token", code="unsupported_grant_type"
    )


@router.post("/recover")
def recover(
    body: RecoverBody, request: Request, runtime: RuntimeDep, auth: AuthServiceDep, conn: SessionDep
) -> JSONResponse:
    auth.recover(conn, body.email, _base_url(runtime, request), _client_ip(request))
    return _json({})


@router.post("/verify")
def verify(body: VerifyBody, auth: AuthServiceDep, conn: SessionDep) -> JSONResponse:
    return _json(
        auth.verify(
            conn, type_=body.type, token_hash=body.token_hash, email=body.email, token=body.token
        )
    )


@router.get("/user")
def get_user(caller: CallerDep, auth: AuthServiceDep, conn: SessionDep) -> JSONResponse:
    return _json(auth.get_user(conn, caller))


@router.put("/user")
def update_user(
    body: UpdateUserBody, caller: CallerDep, auth: AuthServiceDep, conn: SessionDep
) -> JSONResponse:
    return _json(
        auth.update_user(conn, caller, password=body.password, data=body.data, email=body.email)
    )


@router.post("/logout", status_code=204)
def logout(
    caller: CallerDep,
    auth: AuthServiceDep,
    conn: SessionDep,
    scope: Annotated[Literal["global", "local", "others"], Query()] = "global",
) -> Response:
    auth.logout(conn, caller, scope)
    return Response(status_code=204, headers=_HEADERS)
