"""An OIDC provider of the tests' own: a key pair made here, tokens signed with it (PyJWT), and the RAM config
that registers the provider with the emulator and lets it assume a role."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from imm_faces.emulator.ram import EMULATOR_ACCOUNT_ID, Ram, ram_from_document

ACCOUNT = "1234567890123456"
ROLE = f"acs:ram::{ACCOUNT}:role/deployer"
PROVIDER = f"acs:ram::{ACCOUNT}:oidc-provider/ci"
ISSUER = "https://token.actions.example"
AUDIENCE = "sts.aliyuncs.com"
SUBJECT = "repo:org/app:ref:refs/heads/main"
KID = "key-1"
FULL_ACCESS = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["imm:*", "oss:*"], "Resource": "*"}]}


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def other_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for the provider, for ten minutes; an override of None removes that claim."""
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISSUER, "sub": SUBJECT, "aud": AUDIENCE, "exp": now + 600, "iat": now}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def mint(
    payload: dict[str, Any] | None = None, *, key: Any = None, alg: str = "RS256", headers: dict[str, Any] | None = None
) -> str:
    """A token signed with ``key`` (the provider's RSA key by default)."""
    header = {k: v for k, v in {"kid": KID, **(headers or {})}.items() if v is not None}
    return jwt.encode(payload if payload is not None else claims(), key or rsa_key(), algorithm=alg, headers=header)


def jwks() -> dict[str, Any]:
    """The provider's public keys: the RSA one (kid key-1) and the EC one (no kid)."""
    rsa_jwk = {**RSAAlgorithm.to_jwk(rsa_key().public_key(), as_dict=True), "kid": KID}
    return {"keys": [rsa_jwk, ECAlgorithm.to_jwk(ec_key().public_key(), as_dict=True)]}


def allow(action: str | list[str], resource: str | list[str] = "*") -> dict[str, Any]:
    """A policy of one Allow statement."""
    return {"Version": "1", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


def trust(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def oidc_trust(**conditions: str) -> dict[str, Any]:
    """A trust statement for the provider, with StringEquals conditions (oidc_sub=... -> oidc:sub)."""
    equal = {"oidc:iss": ISSUER, "oidc:aud": AUDIENCE, **{k.replace("_", ":", 1): v for k, v in conditions.items()}}
    return {
        "Effect": "Allow",
        "Action": "sts:AssumeRole",
        "Principal": {"Federated": [PROVIDER]},
        "Condition": {"StringEquals": equal},
    }


def account_trust(*accounts: str) -> dict[str, Any]:
    roots = [f"acs:ram::{a}:root" for a in accounts or (EMULATOR_ACCOUNT_ID, ACCOUNT)]
    return {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": roots}}


def ram_document(subject: str | None = SUBJECT, **extra: Any) -> dict[str, Any]:
    """The provider, and the role ``deployer`` (full access to IMM and OSS) that the provider's tokens for
    ``subject`` (any subject when None) and the emulator's owner may assume."""
    federated = oidc_trust(oidc_sub=subject) if subject else oidc_trust()
    role = {"arn": ROLE, "trust_policy": trust(federated, account_trust()), "policies": [FULL_ACCESS]}
    doc: dict[str, Any] = {
        "oidc_providers": [{"arn": PROVIDER, "issuer": ISSUER, "client_ids": [AUDIENCE], "jwks": jwks()}],
        "roles": [role],
    }
    doc.update(extra)
    return doc


def ram(subject: str | None = SUBJECT, **extra: Any) -> Ram:
    return ram_from_document(json.loads(json.dumps(ram_document(subject, **extra))), Path())
