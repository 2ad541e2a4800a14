"""The stack program: stack config -> one ``FaceClustering`` -> the stack outputs. ``__main__.py`` calls
:func:`run`; ``imm-faces rehearse`` runs the same function under the Pulumi SDK's mocks.

Config keys (schema, types, defaults and descriptions in ``Pulumi.yaml``), in the ``imm-faces`` namespace:
``region`` (else ``alicloud:region``), ``projectName``, ``datasetName``, ``roleName``, ``policyName``,
``description``, ``ossLocations``, ``notificationTopic``, ``serviceRole``, ``accountId``, ``adoptExisting``,
``deleteAdopted``, ``createCheckerPolicy``, ``runClustering``, ``clusteringTimeout``, ``scanTimeout``,
``clusteringTrigger``, ``endpoint``.
"""

from __future__ import annotations

from typing import Any

import pulumi

from imm_faces.components.args import FaceClusteringArgs
from imm_faces.components.face_clustering import FaceClustering

COMPONENT_NAME = "faces"


def args_from_config(config: pulumi.Config, alicloud: pulumi.Config) -> FaceClusteringArgs:
    region = config.get("region") or alicloud.get("region")
    if not region:
        raise pulumi.RunError("set the region: `pulumi config set region cn-hangzhou` (or alicloud:region)")
    values: dict[str, Any] = {
        "region": region,
        "project_name": config.get("projectName"),
        "dataset_name": config.get("datasetName"),
        "role_name": config.get("roleName"),
        "policy_name": config.get("policyName"),
        "description": config.get("description"),
        "oss_locations": config.get_object("ossLocations") or [],
        "notification_topic": config.get("notificationTopic"),
        "service_role": config.get("serviceRole"),
        "account_id": config.get("accountId"),
        "endpoint": config.get("endpoint"),
    }
    flags = (
        ("runClustering", "run_clustering"),
        ("adoptExisting", "adopt_existing"),
        ("deleteAdopted", "delete_adopted"),
        ("createCheckerPolicy", "create_checker_policy"),
    )
    for key, field in flags:
        if (flag := config.get_bool(key)) is not None:
            values[field] = flag
    for key, field in (("clusteringTimeout", "clustering_timeout"), ("scanTimeout", "scan_timeout")):
        if (seconds := config.get_int(key)) is not None:
            values[field] = seconds
    if trigger := config.get("clusteringTrigger"):
        values["clustering_triggers"] = {"config": trigger}
    return FaceClusteringArgs.from_config(values)


def run() -> FaceClustering:
    """Build the environment from the stack config and export the stack-outputs contract."""
    args = args_from_config(pulumi.Config(), pulumi.Config("alicloud"))
    faces = FaceClustering(COMPONENT_NAME, args)
    for key, value in faces.outputs.items():
        pulumi.export(key, value)
    pulumi.export("checker_policy_document", faces.checker_policy_document)  # beside the contract, not in it
    return faces
