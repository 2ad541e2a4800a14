"""Run the code blocks of the README and docs/ in order, as a reader would in one shell session:
``python -m tests.readme_session BLOCKS.json RESULTS.json`` (started by ``tests/test_readme.py``, inside a network
namespace of its own when it can be, so the emulator page's fixed port 8000 is this run's alone).

Kinds (the README's ``<!-- readme-test: KIND -->`` markers; no marker is ``run``):

- ``run``: bash blocks with ``bash -e``, python blocks with this Python, in the session's folder and
  environment; a bash block's ``export`` carries on to the blocks after it, as in a shell.
- ``server``: a command that serves until Ctrl-C (the emulator): started in the background, waited for on
  ``http://127.0.0.1:8000/-/ready``, interrupted with SIGINT after the last block.
- ``pulumi-program``: a Pulumi program, run under the Pulumi SDK's mocks (every resource recorded, its inputs
  echoed as outputs); the stack outputs are printed as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

READY_URL = "http://127.0.0.1:8000/-/ready"
BLOCK_TIMEOUT = 600

PULUMI_HARNESS = """
import json, sys
from pulumi.runtime.mocks import Mocks
from imm_faces.components.rehearsal.engine import run_program

class Echo(Mocks):
    def new_resource(self, args):
        return f"{args.name}-id", dict(args.inputs)
    def call(self, args):
        return {}, None

code = sys.stdin.read()
outputs = run_program(lambda: exec(compile(code, "README.md", "exec"), {"__name__": "__main__"}), Echo(),
                      project="readme", stack="test", config={})
print(json.dumps(outputs, sort_keys=True, default=str))
"""


def _run(block: dict[str, Any], cwd: Path, env: dict[str, str], env_file: Path) -> subprocess.CompletedProcess[str]:
    if block["kind"] == "pulumi-program":
        command = [sys.executable, "-c", PULUMI_HARNESS]
        stdin = block["code"]
    elif block["lang"] == "python":
        command, stdin = [sys.executable, "-c", block["code"]], ""
    else:  # bash: the block, then the environment it leaves (its exports) for the next blocks
        command, stdin = ["bash", "-e", "-c", f'{block["code"]}\nenv -0 > "{env_file}"'], ""
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, cwd=cwd, env=env, timeout=BLOCK_TIMEOUT, check=False
    )


def _ready(server: subprocess.Popen[str], deadline: float) -> bool:
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(READY_URL, timeout=2):  # loopback: the README's port
                return True
        except OSError:
            time.sleep(0.3)
    return False


def main(blocks_path: str, results_path: str) -> int:
    if os.environ.get("READMETEST_LOOPBACK_UP") and os.getuid() == 0:  # a fresh namespace's lo starts down
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    blocks = json.loads(Path(blocks_path).read_text())
    cwd = Path(os.environ["READMETEST_CWD"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("READMETEST_")}
    env_file = cwd.parent / "session.env"
    results: list[dict[str, Any]] = []
    servers: list[subprocess.Popen[str]] = []
    try:
        for block in blocks:
            where = {"document": block["document"], "line": block["line"]}  # where the results are looked up
            if block["kind"] == "server":
                log = (cwd.parent / f"server-{Path(block['document']).stem}-{block['line']}.log").open("w")
                server = subprocess.Popen(
                    ["bash", "-e", "-c", block["code"]],
                    cwd=cwd,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    text=True,
                    start_new_session=True,
                )
                servers.append(server)
                ready = _ready(server, time.monotonic() + 120)
                results.append(
                    {
                        **where,
                        "returncode": 0 if ready else 1,
                        "stdout": "",
                        "stderr": "" if ready else f"not ready at {READY_URL}",
                    }
                )
                if not ready:
                    break
                continue
            proc = _run(block, cwd, env, env_file)
            results.append({**where, "returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr})
            if proc.returncode != 0:
                break
            if block["lang"] == "bash" and env_file.exists():
                env = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
    finally:
        for server in servers:  # Ctrl-C, as the README says, then by PID if it lingers
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGINT)
                try:
                    server.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)
                    server.wait(10)
        Path(results_path).write_text(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
