"""The `imm` plugin under the real Pulumi engine (``scripts/pulumi-engine.sh``; the ``engine`` marker skips
without one and fails in CI), against the emulator:

- the YAML example and the TypeScript example (its SDK generated from the plugin's schema, @pulumi/pulumi and
  typescript from npm, run by pulumi-language-nodejs) through `pulumi up`, `imm-faces verify --stack`, a
  no-change preview and `pulumi destroy`;
- `pulumi plugin install resource imm 0.1.0 --file provider/`, then the plugin run from the plugin cache;
- `pulumi import` of a project and a dataset, then the same inputs in the program: no change;
- a clustering task that outlasts its timeout recorded as partially created, resumed by the next `up`;
- issue 21's items under the engine: Ctrl-C during `up` (the engine's Cancel) ends the waits at once and the next
  `up` resumes; an endpoint change is an update that writes nothing to IMM, a trailing '/' no change; two
  FaceClustering components of eight OSS locations each constructed in one `up`."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from imm_faces.emulator.server import Emulator
from imm_faces.runtime.client import ImmClient
from imm_faces.runtime.credentials import Credentials
from imm_faces.runtime.operations import bindings, datasets, projects, tasks
from tests.engine.conftest import BUCKET, PREFIX
from tests.engine.pulumi_engine import Engine, Workspace, interrupt, kill
from tests.engine.stacks import Project, Stack
from tests.fakes import write_photo
from tests.provider.engine import PLUGIN_DIR
from tests.provider.faults import FaultProxy
from tests.provider.test_waits import hold

pytestmark = pytest.mark.engine

EXAMPLES = PLUGIN_DIR / "examples"
EXECUTABLE = PLUGIN_DIR / "pulumi-resource-imm"
LOCATION = f"oss://{BUCKET}/{PREFIX}"
SDKGEN = Path(__file__).parent / "nodejs_sdkgen" / "main.go"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "imm-faces"
TSC_TARGET = ("--module", "commonjs", "--moduleResolution", "node", "--target", "es2020")


def project_names(client: ImmClient) -> list[str]:
    return sorted(p.project_name or "" for p in client.call(projects.ListProjects).projects or [])


def yaml_program(plugin_dir: Path | None = PLUGIN_DIR) -> dict[str, str]:
    """The YAML example, its `plugins.providers` pointed at ``plugin_dir`` (None: none, the plugin cache's)."""
    program = yaml.safe_load((EXAMPLES / "yaml" / "Pulumi.yaml").read_text(encoding="utf-8"))
    if plugin_dir is None:
        del program["plugins"]
    else:
        program["plugins"]["providers"][0]["path"] = str(plugin_dir)
    return {"Pulumi.yaml": yaml.safe_dump(program, sort_keys=False)}


def program(
    name: str, resources: dict[str, Any], outputs: dict[str, Any] | None = None, config: dict[str, Any] | None = None
) -> dict[str, str]:
    """A YAML program using the plugin of this checkout."""
    text = {
        "name": name,
        "runtime": "yaml",
        "plugins": {"providers": [{"name": "imm", "path": str(PLUGIN_DIR)}]},
        "config": config or {},
        "resources": resources,
        "outputs": outputs or {},
    }
    return {"Pulumi.yaml": yaml.safe_dump(text, sort_keys=False)}


def imm_config(emulator: Emulator, keys: Credentials, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The imm provider's stack config (the keys as secrets) and the example's own."""
    config = {"imm:region": "cn-hangzhou", "imm:endpoint": emulator.endpoint, "ossLocation": LOCATION, **extra}
    return config, {"imm:accessKey": keys.access_key_id, "imm:secretKey": keys.access_key_secret}


def verify(stack: Stack, keys: Credentials) -> None:
    """``imm-faces verify --stack`` passes."""
    done = stack.verify(keys)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["passed"] is True, done.stdout


def example_lifecycle(ws: Workspace, project: Project, emulator: Emulator, imm: ImmClient, keys: Credentials) -> None:
    """An example's stack: preview (nothing created), up, verify --stack, a no-change preview, destroy (nothing
    left); the stack's secret keys in nothing the CLI printed."""
    stack = project.stack("dev", *imm_config(emulator, keys))
    preview = stack.preview("--diff")
    assert "imm:index:FigureClusteringTask" in preview.stdout and project_names(imm) == []
    stack.up()
    outputs = stack.outputs()
    name = yaml.safe_load((project.folder / "Pulumi.yaml").read_text(encoding="utf-8"))["name"]
    assert outputs["project_name"] == f"{name}-dev-faces" and outputs["binding_uris"] == [LOCATION]
    verify(stack, keys)
    stack.preview("--expect-no-changes")
    stack.pulumi("destroy", "--yes")
    assert project_names(imm) == []
    assert keys.access_key_secret not in "\n".join(project.transcript)


def test_yaml_example_up_verify_destroy(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    example_lifecycle(workspace, Project(workspace, tmp_path / "yaml", yaml_program()), engine_emulator, imm, keys)


# --- TypeScript ----------------------------------------------------------------------------------------------


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def nodejs_sdkgen(engine: Engine) -> Path:
    """``nodejs_sdkgen/main.go`` built against the engine's own pkg/v3 version, cached by that and the source."""
    match = re.match(r"v?(\d+\.\d+\.\d+)", engine.version)
    assert match, engine.version
    key = hashlib.sha256(SDKGEN.read_bytes() + match.group(1).encode()).hexdigest()[:12]
    built = CACHE / f"nodejs-sdkgen-{key}"
    if (built / "sdkgen").exists():
        return built / "sdkgen"
    if shutil.which("go") is None:
        pytest.fail("generating the TypeScript SDK needs Go (the Node.js host cannot: see nodejs_sdkgen/main.go)")
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".sdkgen-", dir=CACHE))
    env = {**os.environ, "GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "local"}
    (work / "go.mod").write_text("module imm-faces.local/sdkgen\n\ngo 1.26\n")
    shutil.copy(SDKGEN, work / "main.go")
    run(["go", "get", f"github.com/pulumi/pulumi/pkg/v3@v{match.group(1)}"], work, env)
    run(["go", "mod", "tidy"], work, env)
    run(["go", "build", "-o", "sdkgen", "."], work, env)
    try:
        work.rename(built)  # another worker may have built it first: keep theirs
    except OSError:
        shutil.rmtree(work, ignore_errors=True)
    return built / "sdkgen"


def add_nodejs_sdk(ws: Workspace, folder: Path) -> str:
    """`pulumi package add <plugin>`: the SDK generated from the plugin's schema and linked into the project. When
    the Node.js host cannot generate it, Pulumi's codegen does the generation (``nodejs_sdkgen``) from the schema
    `pulumi package get-schema` reads from the plugin, and package.json links it. Says which one ran."""
    added = ws.run("package", "add", str(EXECUTABLE), cwd=folder, check=False)
    if added.returncode == 0:
        return "pulumi package add"
    assert "GeneratePackage not implemented" in added.stdout + added.stderr, added.stdout + added.stderr
    schema = ws.run("package", "get-schema", str(EXECUTABLE), cwd=folder).stdout
    (folder / "imm-schema.json").write_text(schema)
    run([str(nodejs_sdkgen(ws.engine)), str(folder / "imm-schema.json"), str(folder / "sdks" / "imm")], folder, ws.env)
    manifest = json.loads((folder / "package.json").read_text())
    manifest["dependencies"]["@imm-faces/imm"] = "file:sdks/imm"
    (folder / "package.json").write_text(json.dumps(manifest, indent=2))
    return "pkg/v3 codegen/nodejs (the Node.js host has no GeneratePackage)"


def npm(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("npm", path=env["PATH"]) is None:
        pytest.fail("the TypeScript example needs Node.js and npm")
    return run(["npm", *args], folder, env)


def test_typescript_example_up_verify_destroy(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    folder = tmp_path / "typescript"
    shutil.copytree(EXAMPLES / "typescript", folder)
    project = Project(workspace, folder, {})
    npm(folder, workspace.env, "install", "--no-audit", "--no-fund", "--loglevel=error")
    how = add_nodejs_sdk(workspace, folder)
    npm(folder, workspace.env, "install", "--no-audit", "--no-fund", "--loglevel=error")
    print(f"TypeScript SDK generated by: {how}")
    npm(folder, workspace.env, "exec", "--", "tsc", "--noEmit", "-p", ".")  # the example compiles
    # FaceClustering's inputs are plain: an Output where a location belongs does not compile
    (folder / "plain.ts").write_text(
        'import * as pulumi from "@pulumi/pulumi";\nimport * as imm from "@imm-faces/imm";\n'
        'new imm.FaceClustering("f", { region: "cn-hangzhou", ossLocations: [pulumi.output("oss://b/")] });\n'
    )
    refused = subprocess.run(
        ["npm", "exec", "--", "tsc", "--noEmit", "--strict", *TSC_TARGET, "plain.ts"],
        cwd=folder,
        env=workspace.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert refused.returncode != 0 and "TS2322" in refused.stdout and "Output<string>" in refused.stdout, refused.stdout
    (folder / "plain.ts").unlink()
    example_lifecycle(workspace, project, engine_emulator, imm, keys)


# --- installing, importing -----------------------------------------------------------------------------------


def test_plugin_installed_into_the_plugin_cache_runs_from_there(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    """`pulumi plugin install resource imm 0.1.0 --file provider/` (the README's step), then the YAML example
    without `plugins.providers`; ambient plugins ignored, so the engine runs the cached copy, not the
    `pulumi-resource-imm` pip put on PATH."""
    installed = workspace.run("plugin", "install", "resource", "imm", "0.1.0", "--file", str(PLUGIN_DIR), cwd=tmp_path)
    home = Path(workspace.env["PULUMI_HOME"])
    cached = home / "plugins" / "resource-imm-v0.1.0"
    assert (cached / "pulumi-resource-imm").is_file(), installed.stdout + installed.stderr
    assert not (home / "plugins" / ".venv").exists()  # no Python dependency install ran
    workspace.env["PULUMI_IGNORE_AMBIENT_PLUGINS"] = "true"
    project = Project(workspace, tmp_path / "yaml", yaml_program(None))
    stack = project.stack("dev", *imm_config(engine_emulator, keys))
    stack.up()
    assert stack.outputs()["project_name"] == "imm-faces-yaml-dev-faces"
    assert "from $PATH" not in "\n".join(project.transcript)
    stack.pulumi("destroy", "--yes")
    assert project_names(imm) == []


def test_import_then_the_same_inputs_are_no_change(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    imm.call(projects.CreateProject, project_name="made-by-hand", description="before Pulumi")
    imm.call(datasets.CreateDataset, project_name="made-by-hand", dataset_name="faces")
    project = Project(workspace, tmp_path / "import", program("imm-import", {}))
    config, secrets = imm_config(engine_emulator, keys)
    stack = project.stack("dev", {k: v for k, v in config.items() if k.startswith("imm:")}, secrets)
    for token, name, id_ in (
        ("imm:index:Project", "photos", "made-by-hand"),
        ("imm:index:Dataset", "faces", "made-by-hand/faces"),
    ):
        out = tmp_path / f"{name}.yaml"
        stack.pulumi("import", token, name, id_, "--yes", "--out", str(out))
        generated = yaml.safe_load(out.read_text())
        resources = yaml.safe_load((project.folder / "Pulumi.yaml").read_text())
        resources["resources"] = {**(resources.get("resources") or {}), **generated["resources"]}
        (project.folder / "Pulumi.yaml").write_text(yaml.safe_dump(resources, sort_keys=False))
    written = yaml.safe_load((project.folder / "Pulumi.yaml").read_text())["resources"]
    assert written["photos"]["properties"]["description"] == "before Pulumi"
    assert set(written["faces"]["properties"]) <= {"projectName", "datasetName", "region", "endpoint"}, written
    stack.preview("--expect-no-changes")  # the program now says what import recorded: nothing to do
    state = stack.by_name()
    assert (state["photos"]["id"], state["faces"]["id"]) == ("made-by-hand", "made-by-hand/faces")


# --- issue 21 under the engine -------------------------------------------------------------------------------


def task_program(project_name: str) -> dict[str, str]:
    p = "${project.projectName}"
    return program(
        "imm-tasks",
        {
            "project": {"type": "imm:index:Project", "properties": {"projectName": project_name}},
            "dataset": {"type": "imm:index:Dataset", "properties": {"projectName": p, "datasetName": "faces"}},
            "binding": {
                "type": "imm:index:Binding",
                "properties": {"projectName": p, "datasetName": "faces", "uri": LOCATION},
                "options": {"dependsOn": ["${dataset}"]},
            },
            "clustering": {
                "type": "imm:index:FigureClusteringTask",
                "properties": {
                    "projectName": p,
                    "datasetName": "faces",
                    "timeout": "${taskTimeout}",
                    "pollInterval": 0.2,
                },
                "options": {"dependsOn": ["${binding}"]},
            },
        },
        {"task_id": "${clustering.taskId}", "status": "${clustering.status}"},
        {"taskTimeout": {"type": "integer", "default": 1800}},
    )


def task_in_state(stack: Stack) -> dict[str, Any]:
    return stack.by_name()["clustering"]


def test_a_timed_out_task_is_recorded_and_resumed_by_the_next_up(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    release, _ = hold(engine_emulator)
    project = Project(workspace, tmp_path / "tasks", task_program("timed-out"))
    config, secrets = imm_config(engine_emulator, keys, taskTimeout=1)
    stack = project.stack("dev", {k: v for k, v in config.items() if k != "ossLocation"}, secrets)
    first = stack.up(check=False)
    assert first.returncode != 0 and "waits for this same task" in first.stdout, first.stdout
    recorded = task_in_state(stack)
    assert recorded.get("initErrors") and recorded["outputs"]["status"] == "Running", recorded
    (task,) = imm.call(tasks.ListTasks, project_name="timed-out").tasks or []
    assert recorded["id"] == f"timed-out/{task.task_id}"
    release.set()
    stack.set("taskTimeout", 600)
    stack.up()
    assert stack.outputs()["task_id"] == task.task_id and stack.outputs()["status"] == "Succeeded"
    assert len(imm.call(tasks.ListTasks, project_name="timed-out").tasks or []) == 1  # resumed, not restarted
    assert not task_in_state(stack).get("initErrors")
    stack.pulumi("destroy", "--yes")


def test_ctrl_c_ends_the_waits_and_the_next_up_resumes(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    """`pulumi up` waits for a clustering task with the default timeout (half an hour); Ctrl-C: the engine
    cancels, the plugin's wait ends at once, the task is recorded as partially created and the CLI exits within
    seconds. The next `up` waits for the same task."""
    release, _ = hold(engine_emulator)
    project = Project(workspace, tmp_path / "tasks", task_program("cancelled"))
    config, secrets = imm_config(engine_emulator, keys)
    stack = project.stack("dev", {k: v for k, v in config.items() if k != "ossLocation"}, secrets)
    log = tmp_path / "up.log"
    proc = workspace.start("up", "--yes", "--skip-preview", "--stack", "dev", cwd=project.folder, log=log)
    try:
        deadline = time.monotonic() + 120
        while (
            not (
                imm.call(tasks.ListTasks, project_name="cancelled").tasks if "cancelled" in project_names(imm) else None
            )
            or "waiting for it to end" not in log.read_text()
        ):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        started = time.monotonic()
        interrupt(proc)
        proc.wait(timeout=120)
        took = time.monotonic() - started
    finally:
        kill(proc)
    print(f"`pulumi up` exited {took:.1f} s after Ctrl-C")
    assert took < 20, f"{took:.1f} s\n{log.read_text()}"
    recorded = task_in_state(stack)
    assert recorded.get("initErrors") and "cancelled" in recorded["initErrors"][0], recorded
    (task,) = imm.call(tasks.ListTasks, project_name="cancelled").tasks or []
    release.set()
    stack.up()
    assert stack.outputs()["task_id"] == task.task_id and stack.outputs()["status"] == "Succeeded"
    assert len(imm.call(tasks.ListTasks, project_name="cancelled").tasks or []) == 1
    stack.pulumi("destroy", "--yes")


def test_an_endpoint_change_is_an_update_that_writes_nothing(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    project = Project(workspace, tmp_path / "yaml", yaml_program())
    stack = project.stack("dev", *imm_config(engine_emulator, keys))
    stack.up()
    stack.set("imm:endpoint", engine_emulator.endpoint + "/")
    stack.preview("--expect-no-changes")  # another spelling of the same endpoint
    with FaultProxy(engine_emulator.endpoint) as proxy:  # another way to the same IMM (public -> VPC, say)
        stack.set("imm:endpoint", proxy.endpoint)
        planned = stack.preview("--diff").stdout
        assert "~ imm:index:Project" in planned and "endpoint" in planned, planned
        assert "replace" not in planned and "+-" not in planned and "- imm:index" not in planned, planned
        stack.up()
        writes = {a: n for a, n in proxy.counts.items() if not a.startswith(("Get", "List"))}
        assert writes == {}, proxy.counts
        assert stack.outputs()["endpoint"] == proxy.endpoint
        stack.preview("--expect-no-changes")
        stack.set("imm:endpoint", engine_emulator.endpoint)  # the resources reach IMM the way they recorded:
        stack.up()  # record the emulator's again before the proxy goes
    assert stack.outputs()["endpoint"] == engine_emulator.endpoint
    stack.pulumi("destroy", "--yes")
    assert project_names(imm) == []


def test_sixteen_locations_in_one_up(
    workspace: Workspace, engine_emulator: Emulator, imm: ImmClient, keys: Credentials, tmp_path: Path
) -> None:
    """Two FaceClustering components of eight OSS locations each (IMM binds at most 10 to a dataset), each
    constructed by the plugin, their sixteen bindings created by the same plugin process. An existing service
    role: the RAM role and policy would need pulumi-alicloud's plugin."""
    locations = []
    for i in range(16):
        write_photo(engine_emulator.oss_root, f"bucket-{i:02d}", "a.png", [{"person": i % 3}])
        locations.append(f"oss://bucket-{i:02d}/")
    components = {
        f"faces{k}": {
            "type": "imm:index:FaceClustering",
            "properties": {
                "region": "cn-hangzhou",
                "endpoint": engine_emulator.endpoint,
                "serviceRole": "existing-role",
                "ossLocations": locations[8 * k : 8 * k + 8],
                "clusteringTriggers": {"photos": "v1"},
            },
        }
        for k in range(2)
    }
    outputs = {f"faces{k}": f"${{faces{k}.datasetName}}" for k in range(2)}
    project = Project(workspace, tmp_path / "sixteen", program("imm-sixteen", components, outputs))
    config, secrets = imm_config(engine_emulator, keys)
    stack = project.stack("dev", {k: v for k, v in config.items() if k != "ossLocation"}, secrets)
    started = time.monotonic()
    stack.up()
    print(f"`pulumi up` of 2 x 8 locations: {time.monotonic() - started:.1f} s")
    bound = []
    for name in project_names(imm):
        for dataset in imm.call(datasets.ListDatasets, project_name=name).datasets or []:
            found = imm.call(bindings.ListBindings, project_name=name, dataset_name=dataset.dataset_name)
            bound += [b.uri for b in found.bindings or []]
    assert sorted(bound) == locations
    stack.pulumi("destroy", "--yes")
    assert project_names(imm) == []
