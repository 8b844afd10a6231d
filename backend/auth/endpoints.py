"""/auth/v1: the subset of Supabase Auth (GoTrue) that supabase-py uses, served by the
built-in auth server in embedded mode. Requests need the `apikey` header (the anon key)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from backend.auth.dependencies import AuthServiceDep, CurrentUser
from backend.auth.schemas import RecoverBody, SignupBody, TokenBody, UpdateUserBody, VerifyBody
from backend.db import SessionDep
from backend.errors import (
    SUPABASE_API_VERSION,
    BadRequestError,
    NotFoundError,
    ValidationFailedError,
)
from backend.runtime import BaseURLDep, RuntimeDep

_HEADERS = {"X-Supabase-Api-Version": SUPABASE_API_VERSION, "Cache-Control": "no-store"}


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=_HEADERS)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


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
    body: RecoverBody,
    request: Request,
    base_url: BaseURLDep,
    auth: AuthServiceDep,
    conn: SessionDep,
) -> JSONResponse:
    auth.recover(conn, body.email, base_url, _client_ip(request))
    return _json({})


@router.post("/verify")
def verify(body: VerifyBody, auth: AuthServiceDep, conn: SessionDep) -> JSONResponse:
    return _json(
        auth.verify(
            conn, type_=body.type, token_hash=body.token_hash, email=body.email, token=body.token
        )
    )


@router.get("/user")
def get_user(caller: CurrentUser, auth: AuthServiceDep, conn: SessionDep) -> JSONResponse:
    return _json(auth.get_user(conn, caller))


@router.put("/user")
def update_user(
    body: UpdateUserBody, caller: CurrentUser, auth: AuthServiceDep, conn: SessionDep
) -> JSONResponse:
    return _json(
        auth.update_user(conn, caller, password=body.password, data=body.data, email=body.email)
    )


@router.post("/logout", status_code=204)
def logout(
    caller: CurrentUser,
    auth: AuthServiceDep,
    conn: SessionDep,
    scope: Annotated[Literal["global", "local", "others"], Query()] = "global",
) -> Response:
    auth.logout(conn, caller, scope)
    return Response(status_code=204, headers=_HEADERS)
