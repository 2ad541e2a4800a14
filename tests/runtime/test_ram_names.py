"""A role ARN names a RAM role, so STS's RoleArn follows RAM's role-name rule (letters, digits, '.' and '-'), and
an account id is 1-32 ASCII digits: one rule in runtime.rules for the component's arguments, the client's STS
requests and the emulator's RAM."""

from __future__ import annotations

import pydantic
import pytest

from imm_faces.runtime.auth.sts import AssumeRoleRequest

ACCOUNT = "1000000000000001"


@pytest.mark.parametrize("arn", [f"acs:ram::{ACCOUNT}:role/imm-faces.role-1", "acs:ram::1:role/" + "r" * 64])
def test_a_role_arn_of_a_ram_role_name_is_accepted(arn: str) -> None:
    assert AssumeRoleRequest(role_arn=arn, role_session_name="ci").role_arn == arn


@pytest.mark.parametrize(
    "arn",
    [
        f"acs:ram::{ACCOUNT}:role/with_underscore",  # RAM role names have no '_'
        "acs:ram::1:role/" + "r" * 65,
        "acs:ram::\u0661\u0662:role/r",  # Arabic-Indic digits
        f"acs:ram::{'1' * 33}:role/r",
        f"acs:ram::{ACCOUNT}:role/",
    ],
)
def test_a_role_arn_outside_rams_rule_is_refused(arn: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=r"role_arn|RoleArn"):
        AssumeRoleRequest(role_arn=arn, role_session_name="ci")
