"""The built-in auth server's ES256 signing key and anon key, generated once in the data dir."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from backend.keyfiles import write_private_file

logger = logging.getLogger(__name__)

ANON_KEY_TTL = 10 * 365 * 24 * 3600  # like Supabase's long-lived anon keys


class SigningKeys:
    """ES256 key pair + its JWK; kid is the RFC 7638 thumbprint."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self.private_key = private_key
        self.public_key = private_key.public_key()
        jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.public_key))
        self.kid = _thumbprint(jwk)
        self.public_jwk: dict[str, Any] = {
            **jwk,
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
            "key_ops": ["verify"],
        }

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk]}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.private_key, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"}
        )

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def _thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint of an EC public key."""
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
    )


def load_or_create_keys(auth_dir: Path, pem: bytes | None = None) -> SigningKeys:
    """The key from `pem` (NOJOIN_JWT_PRIVATE_KEY) if given, else <auth_dir>/jwt_es256.pem,
    generated (mode 0600) on first start."""
    path = auth_dir / "jwt_es256.pem"
    if pem is not None or path.exists():
        source = "NOJOIN_JWT_PRIVATE_KEY" if pem is not None else str(path)
        try:
            key = serialization.load_pem_private_key(
                pem if pem is not None else path.read_bytes(), password=None
            )
        except ValueError as exc:
            raise RuntimeError(f"{source} is not a PEM private key: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise RuntimeError(f"{source} is not a P-256 (ES256) EC private key.")
        return SigningKeys(key)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(path, pem)
    logger.info("Generated a new ES256 signing key in %s", path)
    return SigningKeys(key)


def load_or_create_anon_key(auth_dir: Path, keys: SigningKeys, issuer: str) -> str:
    """The public anon key (a JWT with role=anon), stable across restarts while the signing key
    is unchanged."""
    path = auth_dir / "anon_key"
    if path.exists():
        token = path.read_text().strip()
        try:
            claims = jwt.decode(
                token, keys.public_key, algorithms=["ES256"], options={"verify_aud": False}
            )
            if claims.get("role") == "anon" and claims.get("iss") == issuer:
                return token
        except jwt.PyJWTError:
            logger.info("Stored anon key no longer matches the signing key; regenerating")
    now = int(time.time())
    token = keys.sign({"iss": issuer, "role": "anon", "iat": now, "exp": now + ANON_KEY_TTL})
    write_private_file(path, token.encode())
    return token
