"""AssumeRoleWithOIDC as Alibaba's STS answers it: a token is accepted only when a provider the emulator was told
about signed it and it is valid for that provider, and only for a role whose trust policy names the provider;
every other token, however malformed, is one of STS's 401 codes, never a 5xx and never a traceback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from jwt import api_jws

from imm_faces.emulator.keys import DEFAULT_ACCESS_KEY
from imm_faces.emulator.oidc import MAX_NUMERIC_DATE
from imm_faces.emulator.ram import RamConfigError, load_ram
from imm_faces.emulator.server import Emulator
from imm_faces.runtime.auth.signing import FORM_CONTENT_TYPE, RpcV2Auth, encode_query
from imm_faces.runtime.auth.sts import STS_VERSION
from imm_faces.runtime.cli.main import main
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.errors import STS_ERRORS
from imm_faces.runtime.operations.projects import ListProjects
from tests import oidc_kit as kit

BASE = {"RoleArn": kit.ROLE, "OIDCProviderArn": kit.PROVIDER, "RoleSessionName": "pod"}
STS_CODES = frozenset(spec.code for spec in STS_ERRORS)
INVALID = "AuthenticationFail.OIDCToken.Invalid"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    root = tmp_path_factory.mktemp("oidc")
    with Emulator(oss_root=root / "oss", ram=kit.ram()) as e:
        yield e


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=30) as c:
        yield c


def assume(emu: Emulator, http: httpx.Client, token: str, **params: str) -> tuple[int, dict[str, Any]]:
    """An unsigned AssumeRoleWithOIDC (its parameters in a form body: a token may be longer than a URL)."""
    url = f"{emu.endpoint}/?Action=AssumeRoleWithOIDC&Version={STS_VERSION}"
    headers = {"accept": "application/json", "content-type": FORM_CONTENT_TYPE}
    response = http.post(url, content=encode_query({**BASE, "OIDCToken": token, **params}), headers=headers)
    return response.status_code, response.json()


def b64(data: bytes | str) -> str:
    return base64.urlsafe_b64encode(data.encode() if isinstance(data, str) else data).decode().rstrip("=")


def unsigned(header: str, signature: str = "") -> str:
    """A token of good claims with this header (JSON text) and signature, made without any key."""
    return f"{b64(header)}.{b64(json.dumps(kit.claims()))}.{signature}"


def signed_text(payload: str) -> str:
    """A token whose claims are exactly ``payload`` (any text), signed by the provider's key."""
    return api_jws.encode(payload.encode(), kit.rsa_key(), algorithm="RS256", headers={"kid": kit.KID})


GOOD_TEXTS = {
    "iss": json.dumps(kit.ISSUER),
    "sub": json.dumps(kit.SUBJECT),
    "aud": json.dumps(kit.AUDIENCE),
    "exp": "4102444800",
}


def claims_text(**texts: str | None) -> str:
    """A claims set from each claim's JSON text (the good ones unless given; None leaves one out)."""
    merged = {**GOOD_TEXTS, **texts}
    return "{" + ", ".join(f'"{name}": {text}' for name, text in merged.items() if text is not None) + "}"


def test_without_a_provider_no_token_is_accepted(tmp_path: Path, http: httpx.Client) -> None:
    """The attack of issue 25: only the owner's key configured, an unsigned request with a self-made ``alg: none``
    token. Refused (no provider is registered), and a validly signed token is refused just the same."""
    owner = Credentials("owner-id", "owner-secret")
    forged = unsigned('{"alg":"none"}')
    with Emulator(oss_root=tmp_path / "oss", access_keys=[owner]) as emu:
        for token in (forged, kit.mint()):
            status, body = assume(emu, http, token)
            assert (status, body["Code"], body["Message"]) == (
                401,
                "AuthenticationFail.NoPermission",
                "No such OIDC Provider registered.",
            ), body
            assert "Credentials" not in body


def test_a_token_of_the_provider_gives_the_role(emu: Emulator, http: httpx.Client) -> None:
    status, body = assume(emu, http, kit.mint())
    assert status == 200, body
    assert body["OIDCTokenInfo"] == {"Subject": kit.SUBJECT, "Issuer": kit.ISSUER, "ClientIds": kit.AUDIENCE}
    assert body["AssumedRoleUser"]["Arn"] == f"acs:ram::{kit.ACCOUNT}:assumed-role/deployer/pod"
    c = body["Credentials"]
    temporary = Credentials(c["AccessKeyId"], c["AccessKeySecret"], c["SecurityToken"])
    with ImmClient(endpoint=emu.endpoint, credentials=temporary) as imm:
        imm.call(ListProjects)
    # The EC key of the provider's JWKS (no kid) signs as well; an audience list naming the client id is good.
    token = kit.mint(kit.claims(aud=["other", kit.AUDIENCE]), key=kit.ec_key(), alg="ES256", headers={"kid": None})
    status, _ = assume(emu, http, token)
    assert status == 200


def _hs256_with_the_public_key() -> str:
    """The classic confusion: HMAC-signed with the provider's public key as the secret."""
    pem = kit.rsa_key().public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    signing_input = unsigned('{"alg":"HS256","typ":"JWT"}')[:-1]
    return f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def _rs256_header_on_an_ec_signature() -> str:
    _, payload, signature = kit.mint(key=kit.ec_key(), alg="ES256").split(".")
    return f"{b64(json.dumps({'alg': 'RS256', 'kid': kit.KID}))}.{payload}.{signature}"


def _tampered() -> str:
    header, _, signature = kit.mint().split(".")
    return f"{header}.{b64(json.dumps(kit.claims(sub='repo:evil/app:ref:refs/heads/main')))}.{signature}"


REFUSED = [
    ("alg none", lambda: unsigned('{"alg":"none"}'), INVALID),
    ("alg none, a signature", lambda: unsigned('{"alg":"none"}', "c2ln"), INVALID),
    ("HS256 with the public key", _hs256_with_the_public_key, INVALID),
    ("another key", lambda: kit.mint(key=kit.other_rsa_key()), "AuthenticationFail.OIDCToken.InvalidSignature"),
    ("claims changed after signing", _tampered, "AuthenticationFail.OIDCToken.InvalidSignature"),
    ("an unknown kid", lambda: kit.mint(headers={"kid": "key-9"}), "AuthenticationFail.OIDCToken.InvalidSignature"),
    ("RS256 header, EC signature", _rs256_header_on_an_ec_signature, "AuthenticationFail.OIDCToken.InvalidSignature"),
    (
        "another issuer",
        lambda: kit.mint(kit.claims(iss="https://evil.example")),
        "AuthenticationFail.OIDCToken.IssuerNotMatch",
    ),
    ("another audience", lambda: kit.mint(kit.claims(aud="other")), "AuthenticationFail.OIDCToken.AudienceNotMatch"),
    ("expired", lambda: kit.mint(kit.claims(exp=int(time.time()) - 1)), "AuthenticationFail.OIDCToken.Expired"),
    ("not valid yet", lambda: kit.mint(kit.claims(nbf=int(time.time()) + 300)), INVALID),
    ("no exp", lambda: kit.mint(kit.claims(exp=None)), INVALID),
    ("no sub", lambda: kit.mint(kit.claims(sub=None)), INVALID),
    (
        "a subject the trust policy does not name",
        lambda: kit.mint(kit.claims(sub="repo:org/other:ref:x")),
        "AuthenticationFail.NoPermission",
    ),
    ("two parts", lambda: "a.b", INVALID),
    ("four parts", lambda: kit.mint() + ".x", INVALID),
    ("a header that is not base64url", lambda: "e30!." + kit.mint().split(".", 1)[1], INVALID),
    ("a header that is not JSON", lambda: b64("{alg") + "." + kit.mint().split(".", 1)[1], INVALID),
    ("a key given twice", lambda: signed_text('{"iss":"https://evil.example","iss":"' + kit.ISSUER + '"}'), INVALID),
    ("over 20,000 characters", lambda: kit.mint(kit.claims(pad="x" * 20_000)), INVALID),
]


@pytest.mark.parametrize(("token", "code"), [pytest.param(t, c, id=i) for i, t, c in REFUSED])
def test_tokens_that_are_refused(emu: Emulator, http: httpx.Client, token: Any, code: str) -> None:
    status, body = assume(emu, http, token())
    assert (status, body["Code"]) == (401, code), body
    assert "Credentials" not in body


def test_the_role_and_the_provider_must_be_known_and_agree(emu: Emulator, http: httpx.Client) -> None:
    token = kit.mint()
    other_role = f"acs:ram::{kit.ACCOUNT}:role/unknown"
    status, body = assume(emu, http, token, RoleArn=other_role)
    assert (status, body["Code"]) == (404, "EntityNotExist.Role")
    unknown_provider = f"acs:ram::{kit.ACCOUNT}:oidc-provider/other"
    assert assume(emu, http, token, OIDCProviderArn=unknown_provider)[1]["Code"] == "AuthenticationFail.NoPermission"
    other_account = "acs:ram::999:oidc-provider/ci"
    assert assume(emu, http, token, OIDCProviderArn=other_account)[1]["Code"] == "AuthenticationFail.NoPermission"
    arabic_indic = "acs:ram::١٢٣٤:role/deployer"  # digits, but not ASCII ones: not an account id
    status, body = assume(emu, http, token, RoleArn=arabic_indic)
    assert (status, body["Code"]) == (400, "InvalidParameter.RoleArn")


RAW_CLAIMS: dict[str, dict[str, str]] = {  # the hostile values of issue 25, as JSON text
    "exp NaN": {"exp": "NaN"},
    "exp nan string": {"exp": '"nan"'},
    "exp inf string": {"exp": '"inf"'},
    "exp Infinity": {"exp": "Infinity"},
    "exp 1e400": {"exp": "1e400"},
    "exp abc": {"exp": '"abc"'},
    "exp [1]": {"exp": "[1]"},
    "exp 10^400": {"exp": "1" + "0" * 400},
    "exp true": {"exp": "true"},
    "nbf 1e400": {"nbf": "1e400"},
    "iat -1": {"iat": "-1"},
    "aud integer": {"aud": "5"},
    "aud empty list": {"aud": "[]"},
}


@pytest.mark.parametrize("texts", RAW_CLAIMS.values(), ids=RAW_CLAIMS.keys())
def test_hostile_claims_are_a_clear_401(
    emu: Emulator, http: httpx.Client, caplog: pytest.LogCaptureFixture, texts: dict[str, str]
) -> None:
    caplog.set_level(logging.WARNING)
    status, body = assume(emu, http, signed_text(claims_text(**texts)))
    assert (status, body["Code"]) == (401, INVALID), body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deeply_nested_claims_are_a_clear_401(
    emu: Emulator, http: httpx.Client, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    """100,000 levels are over STS's 20,000-character token; 5,000 fit and would pass any parser's recursion."""
    caplog.set_level(logging.WARNING)
    status, body = assume(emu, http, signed_text(claims_text(x="[" * depth + "]" * depth)))
    assert (status, body["Code"]) == (401, INVALID), body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# ------------------------------------------------------------------------------------------------ property

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
NUMBER_TEXTS = ["1e400", "-1e400", "NaN", "Infinity", "-0", "1" + "0" * 400, "4102444800.5", "253402300800"]
OTHER_GOOD = [json.dumps(v) for v in (kit.AUDIENCE, kit.ISSUER, kit.SUBJECT, [kit.AUDIENCE, "x"], [kit.AUDIENCE, 1])]
# A claim's text when it is not its good value: absent, any JSON, a number of any size, a hostile number text, or
# another claim's good value.
ANY_TEXT = st.one_of(
    st.none(),
    st.one_of(st.integers(-(2**80), 2**80), st.floats(), st.text(max_size=8), JSON).map(json.dumps),
    st.sampled_from(NUMBER_TEXTS + OTHER_GOOD),
)


@st.composite
def claim_texts(draw: st.DrawFn) -> dict[str, str | None]:
    """Good claims (exp in an hour, nbf a minute ago) with up to two of them replaced by anything."""
    now = int(time.time())
    texts: dict[str, str | None] = {**GOOD_TEXTS, "exp": str(now + 3600), "nbf": str(now - 60), "iat": str(now)}
    count = draw(st.sampled_from([0, 1, 1, 2]))
    for name in draw(st.sets(st.sampled_from(sorted(texts)), min_size=count, max_size=count)):
        texts[name] = draw(ANY_TEXT)
    return texts


def _good_date(text: str | None, now: float, *, future: bool | None) -> bool | None:
    """Whether a NumericDate claim is good (None: within seconds of now, too close to tell)."""
    if text is None:
        return future is not True  # only exp is required
    value = json.loads(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if (isinstance(value, float) and not math.isfinite(value)) or not 0 <= value <= MAX_NUMERIC_DATE:
        return False
    if future is None or abs(value - now) < 30:
        return True if future is None else None
    return (value > now) == future


def _good_claims(texts: dict[str, str | None], now: float) -> bool | None:
    dates = [
        _good_date(texts["exp"], now, future=True),
        _good_date(texts["nbf"], now, future=False),
        _good_date(texts["iat"], now, future=None),
    ]
    if None in dates:
        return None
    loaded = {k: json.loads(v) for k, v in texts.items() if k in ("iss", "sub", "aud") and v is not None}
    aud = loaded.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    return (
        all(dates)
        and loaded.get("iss") == kit.ISSUER
        and loaded.get("sub") == kit.SUBJECT
        and isinstance(audiences, list)
        and all(isinstance(a, str) for a in audiences)
        and kit.AUDIENCE in audiences
    )


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=claim_texts())
def test_any_claims_give_a_credential_or_an_sts_4xx(
    emu: Emulator, http: httpx.Client, caplog: pytest.LogCaptureFixture, texts: dict[str, str | None]
) -> None:
    """Signed by the provider, so that every claim is read: the answer is 200 exactly when the claims are good
    (exp a number in the future, nbf and iat numbers, nbf past, iss, aud and sub the provider's and the trust
    policy's), otherwise one of STS's codes with a 4xx; never a 5xx, never a logged error."""
    caplog.set_level(logging.WARNING)
    payload = claims_text(**texts)
    now = time.time()
    status, body = assume(emu, http, signed_text(payload))
    event(f"{status} {body.get('Code', '')}")  # pytest --hypothesis-show-statistics: how often each answer came
    assert status == 200 or (400 <= status < 500 and body.get("Code") in STS_CODES), (status, body, payload)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    good = _good_claims(texts, now)
    if good is not None:  # None: a date within seconds of now, where either answer is right
        assert (status == 200) == good, (status, body, payload)


# ------------------------------------------------------------------------------------------------ the config file


def test_the_config_file_names_its_keys_by_file(tmp_path: Path, http: httpx.Client) -> None:
    """A provider's keys from a JWKS file or a PEM file (relative to the config), as ``--ram-config`` reads them."""
    (tmp_path / "jwks.json").write_text(json.dumps(kit.jwks()))
    pem = (
        kit.rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "key.pem").write_bytes(pem)
    for source in ({"jwks_file": "jwks.json"}, {"public_key_file": "key.pem"}):
        doc = kit.ram_document()
        provider = doc["oidc_providers"][0]
        del provider["jwks"]
        provider.update(source)
        (tmp_path / "ram.json").write_text(json.dumps(doc))
        with Emulator(oss_root=tmp_path / "oss", ram=load_ram(tmp_path / "ram.json")) as emu:
            assert assume(emu, http, kit.mint())[0] == 200, source
            assert assume(emu, http, kit.mint(key=kit.other_rsa_key()))[0] == 401


BAD_CONFIGS = [
    (
        {"oidc_providers": [{"arn": kit.PROVIDER, "issuer": kit.ISSUER, "client_ids": [kit.AUDIENCE]}]},
        "oidc_providers[0]: give exactly one of jwks",
    ),
    (
        {
            "oidc_providers": [
                {"arn": kit.PROVIDER, "issuer": "http://plain", "client_ids": ["a"], "jwks": {"keys": []}}
            ]
        },
        "issuer must be the issuer's https:// URL",
    ),
    (
        {
            "oidc_providers": [
                {
                    "arn": kit.PROVIDER,
                    "issuer": kit.ISSUER,
                    "client_ids": ["a"],
                    "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
                }
            ]
        },
        "must be an RSA or EC public key",
    ),
    ({"roles": [{"arn": "acs:ram::١٢٣:role/x"}]}, "roles[0].arn must be a role ARN"),
    ({"roles": [{"arn": kit.ROLE, "policies": ["{"]}]}, "roles[0].policies[0]: the document is not JSON"),
    ({"account_id": "١٢٣"}, "account_id must be a string of ASCII digits"),
    ({"rolez": []}, "unknown element 'rolez'"),
]


@pytest.mark.parametrize(("doc", "message"), BAD_CONFIGS)
def test_a_bad_config_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: Any, message: str) -> None:
    path = tmp_path / "ram.json"
    path.write_text(json.dumps(doc, ensure_ascii=False))
    with pytest.raises(RamConfigError, match=re.escape(message)):
        load_ram(path)
    assert main(["emulator", "--ram-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"--ram-config {path}: " in err and message in err and "Traceback" not in err


def test_a_policy_for_a_key_that_is_not_configured_is_refused_at_start(tmp_path: Path) -> None:
    from imm_faces.emulator.server import StartupError

    with pytest.raises(StartupError, match=r"access_keys\.nobody: no such access key"):
        Emulator(oss_root=tmp_path, ram=kit.ram(access_keys={"nobody": {"policies": [kit.FULL_ACCESS]}}))
    Emulator(oss_root=tmp_path, ram=kit.ram(access_keys={DEFAULT_ACCESS_KEY.access_key_id: {"policies": []}})).close()


def test_assume_role_needs_the_trust_of_a_configured_role(emu: Emulator, http: httpx.Client) -> None:
    def assume_role(role: str) -> tuple[int, str]:
        params = {"RoleArn": role, "RoleSessionName": "s1"}
        url = httpx.URL(emu.endpoint + "/").copy_with(query=encode_query(params).encode())
        headers = {"x-acs-action": "AssumeRole", "x-acs-version": STS_VERSION}
        response = http.send(httpx.Request("POST", url, headers=headers), auth=RpcV2Auth(DEFAULT_ACCESS_KEY))
        return response.status_code, response.json().get("Code", "")

    assert assume_role(kit.ROLE)[0] == 200
    assert assume_role(f"acs:ram::{kit.ACCOUNT}:role/unknown") == (404, "EntityNotExist.Role")
