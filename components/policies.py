"""The RAM documents of a face-clustering environment (pure functions: tested table by table).

- :func:`trust_policy`: only the IMM service (``imm.aliyuncs.com``) may assume the role.
- :func:`service_policy`: what IMM needs to do its job here and nothing more: read the objects under each
  bound location (and list them, limited to the prefix), and publish to the one notification topic. Every
  action is named; no statement has a wildcard action.
- :func:`checker_policy`: what ``imm-faces verify`` needs on one project and dataset, for the CI identity
  that runs it: the read-only operations it calls, taken from the checker itself, and reading the photos
  (``--html``), nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from imm_faces.components.args import oss_resources
from imm_faces.runtime.rules import IMM_SERVICE

OSS_READ_ACTIONS = ("oss:GetObject", "oss:GetObjectMeta")
OSS_LIST_ACTION = "oss:ListObjects"
MNS_PUBLISH_ACTION = "mns:PublishMessage"


def trust_policy() -> dict[str, Any]:
    return {
        "Version": "1",
        "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": [IMM_SERVICE]}}],
    }


def service_policy(locations: Sequence[str], topic: str | None, region: str, account_id: str = "*") -> dict[str, Any]:
    """The role's permissions for ``locations`` (``oss://bucket[/prefix]``) and an optional MNS ``topic``."""
    statements: list[dict[str, Any]] = []
    for uri in locations:
        bucket_arn, objects_arn, prefix = oss_resources(uri)
        statements.append({"Effect": "Allow", "Action": list(OSS_READ_ACTIONS), "Resource": [objects_arn]})
        listing: dict[str, Any] = {"Effect": "Allow", "Action": [OSS_LIST_ACTION], "Resource": [bucket_arn]}
        if prefix:
            listing["Condition"] = {"StringLike": {"oss:Prefix": [f"{prefix}*"]}}
        statements.append(listing)
    if topic:
        arn = f"acs:mns:{region}:{account_id}:/topics/{topic}/messages"
        statements.append({"Effect": "Allow", "Action": [MNS_PUBLISH_ACTION], "Resource": [arn]})
    return {"Version": "1", "Statement": statements}


def checker_policy(
    project: str, dataset: str, region: str, account_id: str = "*", locations: Sequence[str] = ()
) -> dict[str, Any]:
    """Exactly the ``imm:`` actions ``imm-faces verify`` calls (``runtime.verify.run.OPERATIONS``), on this
    project's and this dataset's RAM resources; and ``oss:GetObject`` on the objects under ``locations``
    (``oss://bucket[/prefix]``, where the dataset's photos are), which ``verify --html`` reads for its pictures
    (OSS authorizes a thumbnail made by its image processing as a GetObject of the photo)."""
    from imm_faces.runtime.verify.run import OPERATIONS, PROJECT_SCOPED

    project_arn = f"acs:imm:{region}:{account_id}:project/{project}"
    dataset_arn = f"{project_arn}/dataset/{dataset}"
    scoped: dict[str, list[str]] = {project_arn: [], dataset_arn: []}
    for op in OPERATIONS:
        scoped[project_arn if op.name in PROJECT_SCOPED else dataset_arn].append(f"imm:{op.name}")
    statements = [{"Effect": "Allow", "Action": sorted(actions), "Resource": [arn]} for arn, actions in scoped.items()]
    if locations:
        objects = [oss_resources(uri)[1] for uri in locations]
        statements.append({"Effect": "Allow", "Action": [OSS_READ_ACTIONS[0]], "Resource": objects})
    return {"Version": "1", "Statement": statements}


def to_json(document: dict[str, Any]) -> str:
    """Stable JSON text (sorted keys, no spaces), so an unchanged policy never shows as a diff."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
