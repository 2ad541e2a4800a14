"""``FaceClustering``: a working IMM face-clustering environment as one Pulumi component.

Children, all parented to the component:

- ``<name>-role`` (``alicloud.ram.Role``): the role IMM assumes, trusted by ``imm.aliyuncs.com`` only; with
  ``<name>-policy`` (``alicloud.ram.Policy``, least privilege, see :mod:`imm_faces.components.policies`) and
  ``<name>-policy-attachment``. Skipped when ``service_role`` names an existing role, or when the project is
  not managed here.
- ``<name>-project`` (:class:`~imm_faces.components.providers.project.Project`), unless ``manage_project=False``;
- ``<name>-dataset`` (:class:`~imm_faces.components.providers.dataset.Dataset`);
- ``<name>-binding-<n>`` (:class:`~imm_faces.components.providers.binding.Binding`), one per OSS location;
- ``<name>-clustering`` (:class:`~imm_faces.components.providers.clustering_task.FigureClusteringTask`), after the
  bindings' first full scans, when ``run_clustering``. It never inherits ``protect`` from the component: a
  clustering run is an event, and re-running it (a change of ``clustering_triggers``) is a replace that a
  protected component must still allow. Deleting it deletes nothing in IMM.

Default physical names are qualified with the Pulumi project and stack (:class:`~imm_faces.components.args.NameScope`),
so stacks never collide; objects that already exist are never taken over unless ``adopt_existing``.

Its outputs are exactly the stack-outputs contract, :class:`imm_faces.runtime.outputs.StackOutputs`, that
``imm-faces verify`` reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_alicloud as alicloud

from imm_faces.components.args import FaceClusteringArgs, NameScope, ResolvedArgs
from imm_faces.components.policies import checker_policy, service_policy, to_json, trust_policy
from imm_faces.components.providers import Binding, Dataset, FigureClusteringTask, Project
from imm_faces.runtime.credentials import SETTINGS
from imm_faces.runtime.models.base import snake_name
from imm_faces.runtime.outputs import StackOutputs

TYPE = "imm-faces:index:FaceClustering"


ASSUME_ROLE = SETTINGS["assume_role"]


def _assumed_role() -> str | None:
    """The role pulumi-alicloud's default provider assumes: ``alicloud:assumeRole`` or ALICLOUD_ASSUME_ROLE_ARN."""
    namespace, key = str(ASSUME_ROLE.config_key).split(":")
    setting = pulumi.Config(namespace).get_object(key)
    if isinstance(setting, dict) and setting.get("roleArn"):
        return str(setting["roleArn"])
    return ASSUME_ROLE.from_env(os.environ)


def _explicit_alicloud_provider(opts: pulumi.ResourceOptions | None) -> bool:
    """Whether the RAM children would use an alicloud provider given in code (opts or the parent's)."""
    if opts is None:
        return False
    if getattr(opts.provider, "package", None) == "alicloud":
        return True
    providers = opts.providers
    if isinstance(providers, Mapping) and "alicloud" in providers:
        return True
    if isinstance(providers, Sequence) and any(getattr(p, "package", None) == "alicloud" for p in providers):
        return True
    return "alicloud" in (getattr(opts.parent, "_providers", None) or {})


def _check_one_account(name: str, opts: pulumi.ResourceOptions | None) -> None:
    """The RAM role and the IMM project must land in one account. With an assumed role (``alicloud:assumeRole``),
    they do when both read it: the default alicloud provider reads the stack config and the environment, and so
    do the IMM providers (:mod:`imm_faces.runtime.credentials`, same order). An alicloud provider made in code
    does not read the stack config and may assume anything, so that combination is refused."""
    role = _assumed_role()
    if role and _explicit_alicloud_provider(opts):
        raise pulumi.RunError(
            f"FaceClustering {name}: the stack assumes {role} ({ASSUME_ROLE.config_key} or {ASSUME_ROLE.env[0]}), "
            f"which the IMM resources use, but the RAM role would be created by an alicloud provider given in code, "
            f"whose credentials and assumed role the IMM resources cannot know: the role and the IMM project could "
            f"land in different accounts. "
            f"Let the component use the default alicloud provider, or pass service_role= an existing role of the "
            f"assumed account."
        )


def _kept_at_destroy(dataset: Dataset, resolved: ResolvedArgs) -> pulumi.Output[bool]:
    """Whether `pulumi destroy` keeps the dataset: one adopted (it existed: someone else's), unless delete_adopted.
    Then the bindings this stack adds take out the files they indexed when they are deleted, so the dataset is
    given back holding what it held (IMM's DeleteBinding alone would leave this stack's photos in it)."""
    return dataset.adopted.apply(lambda adopted: bool(adopted) and not resolved.delete_adopted)


class FaceClustering(pulumi.ComponentResource):
    """An IMM project, dataset, bindings, clustering task and the RAM role IMM uses, as one component."""

    project_name: pulumi.Output[str]
    dataset_name: pulumi.Output[str]
    clustering_task_id: pulumi.Output[str | None]
    service_role: pulumi.Output[str | None]
    service_role_arn: pulumi.Output[str | None]
    outputs: dict[str, pulumi.Output[Any]]
    checker_policy_document: pulumi.Output[str]

    def __init__(self, name: str, args: FaceClusteringArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        scope = NameScope(pulumi.get_project(), pulumi.get_stack())
        resolved = args.resolved(name, scope)  # raises ArgsError before anything is registered
        if resolved.manage_project and resolved.service_role is None:
            _check_one_account(name, opts)
        super().__init__(TYPE, name, None, opts)
        self.args = resolved
        """The validated arguments, defaults filled in (names, role and policy names)."""
        child = pulumi.ResourceOptions(parent=self)

        role_name, role_arn, access = self._service_role(name, child)
        self.service_role = pulumi.Output.from_input(role_name)
        self.service_role_arn = pulumi.Output.from_input(role_arn)
        project_deps = self._project(name, role_name, access)
        dataset = self._dataset(name, project_deps)
        bindings = self._bindings(name, dataset, child)
        self.clustering_task_id = pulumi.Output.from_input(None)
        if resolved.run_clustering:
            self.clustering_task_id = self._clustering_task(name, scope, [dataset, *bindings])
        self._checker_policy(name, child)
        self.outputs = self._contract_outputs(dataset)
        self.register_outputs(self.outputs)

    def _project(
        self, name: str, role_name: pulumi.Input[str | None], access: list[pulumi.Resource]
    ) -> list[pulumi.Resource]:
        """The IMM project (unless the stack only adds a dataset to an existing one); what the dataset waits for."""
        resolved = self.args
        if not resolved.manage_project:
            self.project_name = pulumi.Output.from_input(resolved.project_name)
            return access
        inputs = {
            **resolved.target,
            **resolved.ownership,
            "project_name": resolved.project_name,
            "service_role": role_name,
            "description": resolved.description,
            "template_id": resolved.template_id,
            "tags": resolved.tags or None,
            **{snake_name(k): v for k, v in resolved.project_quotas.items()},
        }
        project = Project(f"{name}-project", inputs, pulumi.ResourceOptions(parent=self, depends_on=access))
        self.project_name = project.project_name
        return [project]

    def _dataset(self, name: str, project_deps: list[pulumi.Resource]) -> Dataset:
        resolved = self.args
        inputs = {
            **resolved.target,
            **resolved.ownership,
            "project_name": self.project_name,
            "dataset_name": resolved.dataset_name,
            "description": resolved.description,
            "template_id": resolved.template_id,
            **{snake_name(k): v for k, v in resolved.dataset_quotas.items()},
        }
        dataset = Dataset(f"{name}-dataset", inputs, pulumi.ResourceOptions(parent=self, depends_on=project_deps))
        self.dataset_name = dataset.dataset_name
        return dataset

    def _bindings(self, name: str, dataset: Dataset, child: pulumi.ResourceOptions) -> list[Binding]:
        """One binding per OSS location; in a dataset the stack adopted and keeps, each removes what it indexed."""
        resolved = self.args
        scanned = {
            **resolved.target,
            **resolved.ownership,
            "project_name": self.project_name,
            "dataset_name": self.dataset_name,
            "scan_timeout": resolved.scan_timeout,
            "unindex_on_delete": _kept_at_destroy(dataset, resolved),
        }
        return [
            Binding(f"{name}-binding-{i}", {**scanned, "uri": uri}, child)
            for i, uri in enumerate(resolved.oss_locations)
        ]

    def _clustering_task(self, name: str, scope: NameScope, after: list[pulumi.Resource]) -> pulumi.Output[str | None]:
        resolved = self.args
        task_name = f"{name}-clustering"
        inputs = {
            **resolved.target,
            "project_name": self.project_name,
            "dataset_name": self.dataset_name,
            "timeout": resolved.clustering_timeout,
            "triggers": resolved.clustering_triggers,
            "notification_topic": resolved.notification_topic,
            "owner": f"{scope.project}/{scope.stack}/{task_name}",
        }
        options = pulumi.ResourceOptions(parent=self, depends_on=after, protect=False)
        return FigureClusteringTask(task_name, inputs, options).task_id

    def _checker_policy(self, name: str, child: pulumi.ResourceOptions) -> None:
        """The read-only RAM policy `imm-faces verify` needs here (JSON), created too when asked."""
        resolved = self.args
        photos = resolved.read_locations
        self.checker_policy_document = pulumi.Output.all(self.project_name, self.dataset_name).apply(
            lambda names: to_json(checker_policy(names[0], names[1], resolved.region, resolved.account_id, photos))
        )
        if resolved.create_checker_policy:
            alicloud.ram.Policy(
                f"{name}-checker-policy",
                policy_name=resolved.checker_policy_name,
                policy_document=self.checker_policy_document,
                opts=child,
                description=f"What imm-faces verify reads in {resolved.project_name}/{resolved.dataset_name}.",
            )

    def _contract_outputs(self, dataset: Dataset) -> dict[str, pulumi.Output[Any]]:
        resolved = self.args
        outputs = {
            "project_name": self.project_name,
            "dataset_name": self.dataset_name,
            "region": pulumi.Output.from_input(resolved.region),
            "endpoint": dataset.endpoint,  # what the resources were created against
            "clustering_task_id": self.clustering_task_id,
            "service_role": self.service_role,
            "service_role_arn": self.service_role_arn,
            "binding_uris": pulumi.Output.from_input(list(resolved.oss_locations)),
        }
        if set(outputs) != set(StackOutputs.model_fields):  # the contract is defined in runtime, once
            raise pulumi.RunError("FaceClustering outputs drifted from imm_faces.runtime.outputs.StackOutputs")
        return outputs

    def _service_role(
        self, name: str, child: pulumi.ResourceOptions
    ) -> tuple[pulumi.Input[str | None], pulumi.Input[str | None], list[pulumi.Resource]]:
        """(role name, role ARN, resources the project must wait for): created here, or given."""
        resolved = self.args
        if not resolved.manage_project:
            return None, None, []
        if resolved.service_role is not None:
            return resolved.service_role, None, []
        role = alicloud.ram.Role(
            f"{name}-role",
            role_name=resolved.role_name,
            assume_role_policy_document=to_json(trust_policy()),
            description=f"Assumed by IMM for the {resolved.project_name} project (imm-faces).",
            opts=child,
        )
        document = service_policy(
            resolved.read_locations, resolved.notification_topic, resolved.region, resolved.account_id
        )
        if not document["Statement"]:  # nothing to grant: RAM rejects an empty policy
            return role.role_name, role.arn, [role]
        policy = alicloud.ram.Policy(
            f"{name}-policy",
            policy_name=resolved.policy_name,
            policy_document=to_json(document),
            description=f"What IMM may read and publish for {resolved.project_name} (imm-faces).",
            opts=child,
        )
        attachment = alicloud.ram.RolePolicyAttachment(
            f"{name}-policy-attachment",
            role_name=role.role_name,
            policy_name=policy.policy_name,
            policy_type="Custom",
            opts=child,
        )
        return role.role_name, role.arn, [role, policy, attachment]
