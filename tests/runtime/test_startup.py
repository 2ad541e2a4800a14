"""What `imm-faces verify` pays before its first request, each in a fresh interpreter: no httpx command-line
client, no operation module or model it does not use, no CA file for a plain-http endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def fresh(code: str) -> Any:
    """Run ``code`` in a new interpreter; it prints one JSON document as its last line."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


CLI_LIBRARIES = ("click", "pygments", "rich")


def test_the_cli_never_imports_httpxs_command_line_client() -> None:
    """httpx imports its own CLI (click, pygments, rich) whenever they are installed; `imm-faces` never runs it."""
    seen = "[m for m in ('click', 'pygments', 'rich') if m in sys.modules]"
    plain = fresh(f"import sys, httpx, json; print(json.dumps({seen}))")
    if not plain:
        pytest.skip("none of click, pygments, rich is installed: httpx imports no CLI here anyway")
    ours = fresh(
        "import sys, json, imm_faces.runtime.cli.main, imm_faces.runtime.client, httpx\n"
        f"print(json.dumps([{seen}, callable(httpx.main), httpx.main.__module__]))"
    )
    assert ours == [[], True, "httpx"]


def test_operation_models_are_built_when_first_used_and_all_with_the_catalog() -> None:
    result = fresh("""
import json, sys
import imm_faces.runtime.cli.main, imm_faces.runtime.cli.verify, imm_faces.runtime.client, imm_faces.runtime.verify.run
from imm_faces.runtime.models.base import WireModel
from imm_faces.runtime.operations.projects import GetProject

def models():
    found, pending = [], list(WireModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending += model.__subclasses__()
        found.append(model)
    return found

modules = sorted(m for m in sys.modules if m.startswith("imm_faces.runtime.operations."))
built_at_import = [m.__name__ for m in models() if m.__pydantic_complete__]
GetProject.request(project_name="p").to_params()
built_after_one = sorted(m.__name__ for m in models() if m.__pydantic_complete__)
from imm_faces.runtime.operations import CATALOG, OPERATIONS
print(json.dumps({"modules": modules, "built_at_import": built_at_import, "built_after_one": built_after_one,
                  "not_built": [m.__name__ for m in models() if not m.__pydantic_complete__], "total": len(models()),
                  "catalog": list(CATALOG), "listed": [p.split(".")[1] for p in OPERATIONS]}))
""")
    assert "imm_faces.runtime.operations.bindings" not in result["modules"]  # verify calls no binding operation
    assert "imm_faces.runtime.operations.files" not in result["modules"]
    assert result["built_at_import"] == []
    assert result["built_after_one"] == ["GetProjectRequest"]
    assert result["not_built"] == [] and result["total"] > 60  # reading the catalog built every model
    assert result["catalog"] == result["listed"] and len(result["catalog"]) == 29


def test_a_plain_http_endpoint_loads_no_ca_file_and_trusts_no_certificate() -> None:
    result = fresh("""
import json, ssl
from imm_faces.runtime.client import AsyncImmClient, ImmClient
from imm_faces.runtime.http import tls_context
from imm_faces.runtime.credentials import Credentials

key = Credentials("id", "secret")
clients = [ImmClient(endpoint="http://127.0.0.1:9", credentials=key),
           AsyncImmClient(endpoint="http://127.0.0.1:9", credentials=key)]
loaded_for_http = tls_context.cache_info().misses
context = clients[0]._http._transport._pool._ssl_context
plain = [context.verify_mode == ssl.CERT_REQUIRED, context.check_hostname, context.get_ca_certs()]
ImmClient(endpoint="https://imm.cn-hangzhou.aliyuncs.com", credentials=key)
print(json.dumps([loaded_for_http, plain, tls_context.cache_info().misses]))
""")
    assert result == [0, [True, True, []], 1]


def test_the_runners_imports_run_without_the_collector_and_are_frozen_once(tmp_path: Path) -> None:
    """A runner module's imports (most of `imm-faces verify`'s start-up) make objects that live as long as the
    process: no collection runs while they are imported, and they are moved out of the collector's way after,
    once per process. (Run through `main` on outputs that do not exist: exit 2 before any request.)"""
    result = fresh(f"""
import gc, json, sys
from imm_faces.runtime.cli.main import main
RUNNER = "imm_faces.runtime.cli.verify_run"
during = []

def watch(phase, info):
    runner = sys.modules.get(RUNNER)
    if phase == "start" and runner is not None and not hasattr(runner, "run"):  # while its imports run
        during.append(info["generation"])

gc.callbacks.append(watch)
argv = ["verify", "--outputs", {str(tmp_path / "missing.json")!r}, "--quiet"]
codes = [main(argv)]
frozen = gc.get_freeze_count()
garbage = [[object()] for _ in range(10_000)]
codes.append(main(argv))
print(json.dumps({{"codes": codes, "during": during, "frozen": frozen, "frozen_again": gc.get_freeze_count(),
                  "enabled": gc.isenabled(), "client": "imm_faces.runtime.client" in sys.modules,
                  "xml": "xml.etree.ElementTree" in sys.modules}}))
""")
    assert result["codes"] == [2, 2] and result["client"]
    assert result["during"] == []  # without the pause, the imports trigger dozens of collections
    assert result["frozen"] > 50_000  # the imports' objects, out of the collector's way
    # once per process: a later run does not freeze the 10,000 lists made since (the count falls as frozen objects die)
    assert result["frozen_again"] <= result["frozen"]
    assert result["enabled"]
    assert not result["xml"]  # XML is written for --junit-xml only, imported there


def test_verify_runs_with_rarer_young_collections_and_restores_them(tmp_path: Path) -> None:
    """While verify runs, the youngest generation is collected every SHORT_RUN_YOUNG_THRESHOLD allocations (the run
    keeps nearly all it reads); the thresholds it found are back afterwards, whichever way the run ended."""
    result = fresh(f"""
import asyncio, gc, json
from imm_faces.runtime.cli.main import SHORT_RUN_YOUNG_THRESHOLD, main
gc.set_threshold(900, 11, 12)
during = []
real_run = asyncio.run

def run(main_coroutine):
    during.append(gc.get_threshold())
    return real_run(main_coroutine)

asyncio.run = run
code = main(["verify", "--outputs", {str(tmp_path / "missing.json")!r}, "--quiet"])
print(json.dumps({{"code": code, "during": during, "after": gc.get_threshold(), "short": SHORT_RUN_YOUNG_THRESHOLD}}))
""")
    assert result["code"] == 2
    assert result["during"] == [[result["short"], 11, 12]]
    assert result["after"] == [900, 11, 12]


def test_the_installed_command_ends_without_teardown_after_verify_only(tmp_path: Path) -> None:
    """``console()`` (the installed ``imm-faces``): after verify, whose runner says ``ENDS_AT_ONCE``, the process ends
    once stdout and stderr are flushed (no ``atexit`` callback runs) with its report whole and its exit code; after
    anything else the interpreter ends as usual."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # stdout to a pipe is then buffered

    def run(*argv: str, trace: bool = False) -> subprocess.CompletedProcess[str]:
        code = (
            "import atexit, sys\n"
            + ("sys.settrace(lambda frame, event, arg: None)\n" if trace else "")
            + "atexit.register(lambda: print('teardown ran', file=sys.stderr))\n"
            f"sys.argv = ['imm-faces', *{list(argv)!r}]\n"
            "from imm_faces.runtime.cli.main import console\n"
            "console()\n"
        )
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, check=False
        )

    verify = run("verify", "--outputs", str(tmp_path / "missing.json"), "--json", "--quiet")
    assert verify.returncode == 2 and "teardown ran" not in verify.stderr
    assert json.loads(verify.stdout)["exit_code"] == 2  # buffered, and flushed before the end
    assert "missing.json" in verify.stderr
    usage = run()  # no command: usage, then the usual end
    assert usage.returncode == 2 and "teardown ran" in usage.stderr
    traced = run("verify", "--outputs", str(tmp_path / "missing.json"), "--json", "--quiet", trace=True)
    assert traced.returncode == 2 and "teardown ran" in traced.stderr  # coverage and profilers save at the end
