"""Paging, filters and deletion in the emulator, through our own client."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from imm_faces.runtime.client import ImmClient, RetryPolicy
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.errors import ImmError
from imm_faces.runtime.operations import bindings, datasets, figure_clusters, files, projects, tasks
from imm_faces.runtime.waiters import TaskTimeoutError, wait_for_task
from tests.helpers import BUCKET, DATASET, PROJECT, TWO_PEOPLE, deploy, wait_indexed


def test_list_projects_pages_by_name_with_prefix_and_tags(client: ImmClient) -> None:
    for name in ("b-two", "a-one", "b-one", "c-one", "b-three"):
        client.call(projects.CreateProject, project_name=name, tag=[{"Key": "team", "Value": name[0]}])
    names = [p.project_name for p in client.paginate(projects.ListProjects, max_results=2)]
    assert names == ["a-one", "b-one", "b-three", "b-two", "c-one"]
    first = client.call(projects.ListProjects, max_results=2, prefix="b-")
    assert [p.project_name for p in first.projects or []] == ["b-one", "b-three"] and first.next_token == "b-two"
    tagged = client.call(projects.ListProjects, tag=[{"Key": "team", "Value": "b"}])
    assert [p.project_name for p in tagged.projects or []] == ["b-one", "b-three", "b-two"]


def test_list_datasets_and_bindings_page(client: ImmClient, oss_root: Path) -> None:
    client.call(projects.CreateProject, project_name=PROJECT)
    for name in ("d3", "d1", "x1", "d2"):
        client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name=name)
    got = [
        d.dataset_name for d in client.paginate(datasets.ListDatasets, project_name=PROJECT, max_results=1, prefix="d")
    ]
    assert got == ["d1", "d2", "d3"]
    for bucket in ("bkt-c", "bkt-a", "bkt-b"):
        (oss_root / bucket).mkdir()
        client.call(bindings.CreateBinding, project_name=PROJECT, dataset_name="d1", uri=f"oss://{bucket}")
    uris = [
        b.uri for b in client.paginate(bindings.ListBindings, project_name=PROJECT, dataset_name="d1", max_results=2)
    ]
    assert uris == ["oss://bkt-a", "oss://bkt-b", "oss://bkt-c"]
    project = client.call(projects.GetProject, project_name=PROJECT).project
    assert project is not None and project.dataset_count == 4


def test_tasks_and_clusters_page_in_computed_order(client: ImmClient, oss_root: Path) -> None:
    deploy(client, oss_root, TWO_PEOPLE)
    again = client.call(tasks.CreateFigureClusteringTask, project_name=PROJECT, dataset_name=DATASET).task_id
    assert again and wait_for_task(client, PROJECT, again, timeout=30, interval=0.05).status == "Succeeded"
    listed = list(client.paginate(tasks.ListTasks, project_name=PROJECT, max_results=1, order="desc", sort="StartTime"))
    assert len(listed) == 2 and listed[0].task_id == again
    by_faces = list(
        client.paginate(
            figure_clusters.QueryFigureClusters,
            project_name=PROJECT,
            dataset_name=DATASET,
            max_results=1,
            sort="FaceCount",
            order="desc",
        )
    )
    assert [c.face_count for c in by_faces] == [4, 3]  # the second task added nothing: ids and counts stable
    total = client.call(
        figure_clusters.QueryFigureClusters,
        project_name=PROJECT,
        dataset_name=DATASET,
        with_total_count=True,
        max_results=1,
    )
    assert total.total_count == 2 and total.next_token
    with pytest.raises(ImmError) as bad:
        client.call(
            figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name=DATASET, next_token="not-a-token"
        )
    assert bad.value.code == "InvalidArgument" and "NextToken" in bad.value.message


def test_delete_dataset_then_project_removes_everything(client: ImmClient, oss_root: Path) -> None:
    deploy(client, oss_root, TWO_PEOPLE)
    client.call(datasets.DeleteDataset, project_name=PROJECT, dataset_name=DATASET)
    with pytest.raises(ImmError, match="ResourceNotFound"):
        client.call(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name=DATASET)
    client.call(projects.DeleteProject, project_name=PROJECT)
    assert client.call(projects.ListProjects).projects in (None, [])
    with pytest.raises(ImmError, match="The specified resource project is not found"):
        client.call(projects.GetProject, project_name=PROJECT)


def test_deleting_files_touches_only_their_dataset_and_updates_the_statistics(
    client: ImmClient, oss_root: Path
) -> None:
    deploy(client, oss_root, TWO_PEOPLE)
    client.call(datasets.CreateDataset, project_name=PROJECT, dataset_name="copy")
    uris = [f"oss://{BUCKET}/{key}" for key in TWO_PEOPLE]
    client.call(files.BatchIndexFileMeta, project_name=PROJECT, dataset_name="copy", files=[{"URI": u} for u in uris])
    wait_indexed(client, PROJECT, "copy", len(uris))
    alice = [u for u in uris if "alice" in u]
    client.call(files.BatchDeleteFileMeta, project_name=PROJECT, dataset_name=DATASET, uris=alice)

    def stats(dataset: str) -> tuple[int | None, int | None]:
        got = client.call(datasets.GetDataset, project_name=PROJECT, dataset_name=dataset, with_statistics=True)
        assert got.dataset is not None
        return got.dataset.file_count, got.dataset.total_file_size

    (count, size), (copy_count, copy_size) = stats(DATASET), stats("copy")
    assert count == len(uris) - 3 and copy_count == len(uris) and size is not None and copy_size is not None
    assert size < copy_size
    project = client.call(projects.GetProject, project_name=PROJECT, with_statistics=True).project
    assert project is not None and project.file_count == 2 * len(uris) - 3
    for uri in alice:  # still in the other dataset
        assert client.call(files.GetFileMeta, project_name=PROJECT, dataset_name="copy", uri=uri).files
    # Alice's group keeps the face of the photo with both people: one face, one image.
    left = {
        c.face_count
        for c in client.paginate(figure_clusters.QueryFigureClusters, project_name=PROJECT, dataset_name=DATASET)
    }
    assert left == {1, 3}


def test_wait_for_task_gives_up_after_the_timeout() -> None:
    running = httpx.MockTransport(lambda r: httpx.Response(200, json={"TaskId": "t", "Status": "Running"}))
    imm = ImmClient(
        endpoint="http://imm.test",
        credentials=Credentials("a", "b"),
        transport=running,
        retry=RetryPolicy(max_attempts=1),
    )
    with imm, pytest.raises(TaskTimeoutError, match=r"still Running after 0\.2s"):
        wait_for_task(imm, "p", "t", timeout=0.2, interval=0.05)
