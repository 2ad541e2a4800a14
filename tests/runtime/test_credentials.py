"""Credential lookup order and the error that lists what was tried."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from imm_faces.runtime import credentials as credentials_module
from imm_faces.runtime.credentials import CHAIN, Credentials, CredentialsNotFoundError, resolve_provider


def resolve_credentials(*args: Any, **kwargs: Any) -> Credentials:
    """The chain's credentials now (temporary ones fetched)."""
    return resolve_provider(*args, **kwargs).get()


ALIBABA = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "ali-id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "ali-secret"}
ALICLOUD = {"ALICLOUD_ACCESS_KEY": "old-id", "ALICLOUD_SECRET_KEY": "old-secret", "ALICLOUD_SECURITY_TOKEN": "tok"}


def cli_config(tmp_path: Path, current: str = "default") -> Path:
    path = tmp_path / "config.json"
    path.write_text(
        json.dumps(
            {
                "current": current,
                "profiles": [
                    {"name": "default", "mode": "AK", "access_key_id": "cli-id", "access_key_secret": "cli-secret"},
                    {
                        "name": "sts",
                        "mode": "StsToken",
                        "access_key_id": "STS.id",
                        "access_key_secret": "s",
                        "sts_token": "t",
                    },
                    {"name": "role", "mode": "RamRoleArn", "access_key_id": "x", "access_key_secret": "y"},
                    {"name": "sso", "mode": "CloudSSO", "cloud_sso_sign_in_url": "https://signin.example"},
                ],
            }
        )
    )
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


def test_a_mode_that_is_not_text_is_named_not_a_crash(tmp_path: Path) -> None:
    """A hand-edited config whose mode is a list: the error names it (a lookup of the list itself would raise
    TypeError, unhashable, a traceback)."""
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"profiles": [{"name": "default", "mode": ["AK"], "access_key_id": "a"}]}))
    with pytest.raises(CredentialsNotFoundError, match=r"mode \['AK'\] is not supported"):
        resolve_credentials(env={}, cli_config=cfg)


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


def test_temporary_credentials_are_refreshed_a_quarter_of_their_lifetime_ahead_at_most_15_minutes() -> None:
    import itertools

    from imm_faces.runtime.credentials import Credentials, RefreshingCredentials
    from imm_faces.runtime.errors import ConfigError

    now = [1000.0]
    lifetimes = iter([3600.0, 900.0, None])
    serial = itertools.count()
    failing = [False]

    def fetch() -> Credentials:
        if failing[0]:
            raise ConfigError("STS is down")
        lifetime = next(lifetimes)
        expires = None if lifetime is None else now[0] + lifetime
        return Credentials(f"STS.{next(serial)}", "s", "t", expiration=expires)

    source = RefreshingCredentials(fetch, "test", clock=lambda: now[0])
    assert source.due() and source.get().access_key_id == "STS.0"
    now[0] += 3600 - 900 - 1  # 15 minutes ahead of a one-hour lifetime: not yet
    assert not source.due() and source.get().access_key_id == "STS.0"
    now[0] += 1
    assert source.get().access_key_id == "STS.1"  # a 900 s lifetime: refreshed 225 s ahead
    now[0] += 900 - 225 - 1
    failing[0] = True
    assert not source.due() and source.get().access_key_id == "STS.1"  # not due yet: no fetch at all
    now[0] += 1
    assert source.due()
    assert source.get().access_key_id == "STS.1"  # due, the refresh fails, the current set is still valid
    now[0] += 225
    with pytest.raises(ConfigError, match="STS is down"):
        source.get()  # expired: the failure surfaces
    failing[0] = False
    assert source.get().access_key_id == "STS.2"
    now[0] += 10**9
    assert not source.due()  # no expiration: never refreshed


def test_settings_and_sources_never_show_or_pickle_a_secret() -> None:
    import dataclasses
    import pickle

    from imm_faces.runtime.credentials import CredentialSettings, LazyCredentials, resolve_provider

    settings = CredentialSettings.from_config(
        {
            "alicloud:accessKey": "AKID",
            "alicloud:secretKey": "the-secret-value",
            "alicloud:securityToken": "tok-xyz",
            "alicloud:assumeRoleWithOidc": {
                "roleArn": "acs:ram::1:role/r",
                "oidcProviderArn": "acs:ram::1:oidc-provider/p",
                "oidcToken": "oidc-token-value",
            },
        }.get
    )
    lazy = LazyCredentials(lambda: resolve_provider(settings=settings, env={}))
    assert lazy.get().access_key_id == "AKID"  # explicit keys win over the OIDC setting
    for obj in (settings, settings.assume_role_with_oidc, lazy):
        texts = [repr(obj), str(obj), repr(getattr(obj, "__dict__", ""))]
        assert not any(s in t for t in texts for s in ("the-secret-value", "tok-xyz", "oidc-token-value"))
        with pytest.raises(TypeError):
            pickle.dumps(obj)
    for dataclass_obj in (settings, settings.assume_role_with_oidc):
        with pytest.raises(TypeError):
            dataclasses.asdict(dataclass_obj)  # type: ignore[arg-type]


def items(text: str, marker: str) -> list[str]:
    """The numbered items of the list in ``text`` whose items start with ``marker`` (a regex before the number)."""
    starts = [m.start() for m in re.finditer(rf"^{marker}\d\. ", text, re.MULTILINE)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def test_the_docs_list_the_chain_in_its_order() -> None:
    """docs/cloud.md's order and the front door's are CHAIN's: each finder's key (a stack setting, a variable, the
    CLI's file) is in the item of its rank (one item may hold two finders: both AccessKey variable sets)."""
    page = (Path(__file__).parents[2] / "docs" / "cloud.md").read_text(encoding="utf-8")
    start = page.index("\n1. ", page.index("## Credentials"))
    doc = credentials_module.__doc__ or ""
    for listed in (items(page[start : page.index("\n\n", start + 1)], ""), items(doc[: doc.index("Then, ")], "")):
        ranks = [next(i for i, item in enumerate(listed) if finder.key in item) for finder in CHAIN]
        assert ranks == sorted(ranks) and set(ranks) == set(range(len(listed))), list(zip(CHAIN, ranks, strict=True))
