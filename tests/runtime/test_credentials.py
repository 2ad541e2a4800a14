"""Credential lookup order and the error that lists what was tried."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imm_faces.runtime.credentials import CredentialsNotFoundError, resolve_credentials

ALIBABA = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "ali-id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "ali-secret"}
ALICLOUD = {"ALICLOUD_ACCESS_KEY": "old-id", "ALICLOUD_SECRET_KEY": "old-secret", "ALICLOUD_SECURITY_TOKEN": "tok"}


def cli_config(tmp_path: Path, current: str = "default") -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"current": current, "profiles": [
        {"name": "default", "mode": "AK", "access_key_id": "cli-id", "access_key_secret": "cli-secret"},
        {"name": "sts", "mode": "StsToken", "access_key_id": "STS.id", "access_key_secret": "s", "sts_token": "t"},
        {"name": "role", "mode": "RamRoleArn", "access_key_id": "x", "access_key_secret": "y"},
        {"name": "sso", "mode": "CloudSSO", "cloud_sso_sign_in_url": "https://signin.example"},
    ]}))  # fmt: skip
    return path


def test_order_explicit_then_alibaba_env_then_alicloud_env_then_cli(tmp_path: Path) -> None:
    cfg = cli_config(tmp_path)
    env = {**ALIBABA, **ALICLOUD}
    assert resolve_credentials("a", "b", env=env, cli_config=cfg).access_key_id == "a"
    assert resolve_credentials(env=env, cli_config=cfg).access_key_id == "ali-id"
    got = resolve_credentials(env=ALICLOUD, cli_config=cfg)
    assert (got.access_key_id, got.security_token) == ("old-id", "tok")
    assert resolve_credentials(env={}, cli_config=cfg).access_key_id == "cli-id"


def test_cli_profiles_by_argument_env_and_current(tmp_path: Path) -> None:
    cfg = cli_config(tmp_path)
    got = resolve_credentials(env={}, cli_config=cfg, profile="sts")
    assert (got.access_key_id, got.security_token) == ("STS.id", "t")
    assert resolve_credentials(env={"ALIBABA_CLOUD_PROFILE": "sts"}, cli_config=cfg).security_token == "t"
    assert resolve_credentials(env={}, cli_config=cli_config(tmp_path, current="sts")).access_key_id == "STS.id"


def test_nothing_found_lists_every_source_tried(tmp_path: Path) -> None:
    with pytest.raises(CredentialsNotFoundError) as exc:
        resolve_credentials(env={}, cli_config=tmp_path / "absent.json")
    text = str(exc.value)
    for source in ("explicit arguments", "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALICLOUD_ACCESS_KEY", "absent.json"):
        assert source in text


def test_unsupported_mode_and_missing_profile_are_explained(tmp_path: Path) -> None:
    cfg = cli_config(tmp_path)
    with pytest.raises(CredentialsNotFoundError, match=r"mode 'CloudSSO' is not supported .*needs a browser"):
        resolve_credentials(env={}, cli_config=cfg, profile="sso")
    with pytest.raises(CredentialsNotFoundError, match=r"\(RamRoleArn\) is incomplete: ram_role_arn not set"):
        resolve_credentials(env={}, cli_config=cfg, profile="role")
    with pytest.raises(CredentialsNotFoundError, match="no profile 'nope'"):
        resolve_credentials(env={}, cli_config=cfg, profile="nope")


def test_half_explicit_credentials_are_an_error() -> None:
    with pytest.raises(CredentialsNotFoundError, match="access_key_secret is missing"):
        resolve_credentials("id-only", env=ALIBABA)


def test_repr_hides_secret_and_token() -> None:
    creds = resolve_credentials(env=ALICLOUD, cli_config=Path("/nonexistent"))
    assert "old-secret" not in repr(creds) and "tok" not in repr(creds).replace("token", "")


def test_no_secret_through_repr_asdict_vars_pickle_or_copy() -> None:
    import copy
    import dataclasses
    import pickle

    from imm_faces.runtime.credentials import Credentials

    creds = Credentials("AKID", "the-secret-value", "the-sts-token")
    for show in (repr, str, lambda c: f"{c}", lambda c: f"{c!r}"):
        text = show(creds)
        assert "the-secret-value" not in text and "the-sts-token" not in text and "AKID" in text
    with pytest.raises(TypeError):
        vars(creds)
    with pytest.raises(TypeError):
        dataclasses.asdict(creds)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(creds)
    assert copy.deepcopy(creds) == creds and copy.copy(creds) is creds
    assert "the-secret-value" not in repr([getattr(creds, s) for s in type(creds).__slots__])
    with pytest.raises(AttributeError):
        creds.access_key_secret = "x"  # type: ignore[misc]
    # still usable: values, equality, hashing
    assert (creds.access_key_secret, creds.security_token) == ("the-secret-value", "the-sts-token")
    assert creds == Credentials("AKID", "the-secret-value", "the-sts-token")
    assert creds != Credentials("AKID", "other", "the-sts-token")
    assert len({creds, Credentials("AKID", "the-secret-value", "the-sts-token")}) == 1
    assert Credentials("a", "b").security_token is None
