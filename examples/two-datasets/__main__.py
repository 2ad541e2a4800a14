"""Two datasets in one IMM project, from the FaceClustering component (`pip install imm-faces[pulumi]`).

The first component owns the project and the RAM role (with read access to both datasets' locations); the
second adds a dataset to that project (``manage_project=False``) once the first is in place.
"""

import pulumi

from imm_faces.components import FaceClustering, FaceClusteringArgs

config = pulumi.Config()
region = config.get("region") or "cn-hangzhou"
project = config.get("projectName")  # default: <project>-<stack>-family-project, owned by this stack
endpoint = config.get("endpoint")
family_locations = config.get_object("familyLocations") or []
event_locations = config.get_object("eventLocations") or []

family = FaceClustering(
    "family",
    FaceClusteringArgs(
        region=region,
        project_name=project,
        dataset_name="family",
        endpoint=endpoint,
        oss_locations=family_locations,
        role_locations=event_locations,
    ),
)
events = FaceClustering(
    "events",
    FaceClusteringArgs(
        region=region,
        project_name=family.args.project_name,
        dataset_name="events",
        endpoint=endpoint,
        oss_locations=event_locations,
        manage_project=False,
    ),
    opts=pulumi.ResourceOptions(depends_on=[family]),
)

pulumi.export("family", family.outputs)
pulumi.export("events", events.outputs)
