"""Every code block of the README and of docs/*.md runs in a test exactly as shown, or says why not and is checked
for syntax; every relative link between them leads to a page and a heading that exist.

The line before a fenced block may mark it: ``<!-- readme-test: KIND -->``. No marker means ``run``.

- ``run``: run as shown: the README Quickstart's from the checkout, with a virtual environment of its own; all
  the others in one shell session (``tests/readme_session.py``) in a scratch folder, with ``imm-faces`` on PATH
  and no Alibaba Cloud credentials but what a block exports: the README's first, then each page's in the order
  ``docs/README.md`` lists the pages (a page's blocks may rely on an earlier page's, e.g. the client's on the
  emulator's server);
- ``server``: a command that serves until Ctrl-C (the emulator), running while the blocks after it run;
- ``pulumi-program``: a Pulumi program, run under the Pulumi SDK's mocks;
- ``cloud``: needs Alibaba Cloud, the Pulumi CLI or a remote repository: parsed only (``bash -n``, Python's
  compiler, ``node --check``);
- ``syntax: REASON``: not run, for the reason given (e.g. it is the test suite itself): parsed only;
- ``output``: what a command prints (``text``): its lines are checked against the real output where it is run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import venv
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from tests.processes import without_pulumi_engine

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "docs" / "README.md"
PAGE_LINK = re.compile(r"\]\((?P<page>[\w-]+\.md)\)")  # a link to a page of docs/ from its index


def pages() -> list[Path]:
    """docs/'s pages in the order its index lists them (each once)."""
    return [ROOT / "docs" / name for name in dict.fromkeys(PAGE_LINK.findall(INDEX.read_text()))]


DOCUMENTS = [ROOT / "README.md", INDEX, *pages()]
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w-]*)\s*$")
MARKER = re.compile(r"^\s*<!-- readme-test: (?P<kind>[\w-]+)(?::\s*(?P<reason>.+?))? -->\s*$")
KINDS = {"run", "server", "pulumi-program", "cloud", "syntax", "output"}
LANGS = {"bash", "python", "typescript", "text"}
CREDENTIAL_PREFIXES = ("ALIBABA_CLOUD_", "ALICLOUD_", "ALIYUN_")


@dataclass(frozen=True)
class Block:
    document: str
    line: int
    lang: str
    kind: str
    reason: str | None
    code: str
    section: str

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file, each with its marker and the ``##`` section it is in."""
    lines, document = path.read_text().splitlines(), str(path.relative_to(ROOT))
    found, section, i = [], "", 0
    while i < len(lines):
        if lines[i].startswith("## "):
            section = lines[i][3:].strip()
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, start = opening.group("indent"), i
        body = []
        i += 1
        while not lines[i].startswith(f"{indent}```"):
            body.append(lines[i].removeprefix(indent))
            i += 1
        before = next((line for line in reversed(lines[:start]) if line.strip()), "")
        marker = MARKER.match(before)
        found.append(
            Block(
                document,
                start + 1,
                opening.group("lang"),
                marker.group("kind") if marker else "run",
                marker.group("reason") if marker else None,
                "\n".join(body) + "\n",
                section,
            )
        )
        i += 1
    return found


ALL = [b for path in DOCUMENTS for b in blocks(path)]
QUICKSTART = [b for b in ALL if b.document == "README.md" and b.section == "Quickstart"]
SESSION = [b for b in ALL if b not in QUICKSTART and b.kind in ("run", "server", "pulumi-program")]


def test_every_block_has_a_known_kind() -> None:
    assert len(ALL) > 10 and SESSION and any(b.kind == "run" for b in QUICKSTART)
    for b in ALL:
        where = b.where
        assert b.lang in LANGS and b.kind in KINDS, f"{where}: ```{b.lang} marked {b.kind!r}"
        assert (b.lang == "text") == (b.kind == "output"), f"{where}: only output is text, and text is output"
        assert b.kind != "syntax" or b.reason, f"{where}: say why it is not run: <!-- readme-test: syntax: WHY -->"
        assert b.kind != "pulumi-program" or b.lang == "python", where


def parses(block: Block, tmp_path: Path) -> subprocess.CompletedProcess[str] | None:
    if block.lang == "bash":
        return subprocess.run(["bash", "-n"], input=block.code, capture_output=True, text=True, check=False)
    if block.lang == "python":
        compile(block.code, f"{block.document}:{block.line}", "exec")
        return None
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the TypeScript block's syntax cannot be checked")
    script = tmp_path / f"block-{block.line}.mjs"  # the docs' TypeScript uses no type syntax: a module
    script.write_text(block.code)
    return subprocess.run(["node", "--check", str(script)], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("block", [b for b in ALL if b.kind in ("cloud", "syntax")], ids=lambda b: b.where)
def test_blocks_not_run_here_parse(block: Block, tmp_path: Path) -> None:
    proc = parses(block, tmp_path)
    assert proc is None or proc.returncode == 0, f"{block.document}:{block.line}: {proc.stderr}"


def session_environment(bin_dir: Path) -> dict[str, str]:
    """A reader's shell after `source .venv/bin/activate`: the venv first on PATH, no cloud credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CREDENTIAL_PREFIXES)}
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def normalized(text: str) -> str:
    """Output with what changes from run to run (ports, times, ids, counts) made alike."""
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)
    return re.sub(r"\d+(\.\d+)?", "N", text)


def test_the_quickstart_runs_as_shown(tmp_path: Path) -> None:
    """`./scripts/quickstart.sh` from the checkout, in a new virtual environment (the packages it needs are seen
    from this one's, so nothing large is downloaded): no warning from pip, the rehearsal passes, prints what the
    README shows, and says how to reach `imm-faces` from a new shell."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    here = Path(sys.executable).parent.parent
    site = next((here / "lib").glob("python3*/site-packages"))
    (next((env_dir / "lib").glob("python3*/site-packages")) / "readme-test-deps.pth").write_text(f"{site}\n")
    env = {k: v for k, v in session_environment(Path(sys.executable).parent).items() if k != "VIRTUAL_ENV"}
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if Path(p) != here / "bin")
    env["IMM_FACES_VENV"] = str(env_dir)
    # The Quickstart's reader has neither Go nor Pulumi: `rehearse` (--engine auto) runs on the mocks and says so
    env = without_pulumi_engine(env, tmp_path / "no-engine")
    (run,) = [b for b in QUICKSTART if b.kind == "run"]
    proc = subprocess.run(
        ["bash", "-e", "-c", run.code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900, check=False
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Warning" not in proc.stderr, proc.stderr[-3000:]
    for output in (b for b in QUICKSTART if b.kind == "output"):
        for line in output.code.splitlines():
            assert normalized(line) in normalized(out), f"README.md:{output.line}: {line!r} is not what it prints"
    reach = f"imm-faces is installed in {env_dir}, which is not on your PATH: `source {env_dir}/bin/activate`"
    assert reach in proc.stdout.strip().splitlines()[-1]


def private_loopback() -> list[str] | None:
    """A command prefix that runs in a network namespace of its own (port 8000 free whatever else runs)."""
    probe = ["unshare", "--user", "--map-root-user", "--net", "true"]
    usable = shutil.which("unshare") and shutil.which("ip")
    if usable and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return probe[:-1]
    return None


def port_8000_free() -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", 8000))
        except OSError:
            return False
    return True


def test_the_other_blocks_run_as_shown_in_one_session(tmp_path: Path) -> None:
    """From the reusing program to the local emulator, the official SDK and the client, in the docs' order."""
    from imm_faces.emulator.sample_photos import fetch_photos

    fetch_photos()  # the one download a block makes (cached); the session has no network but loopback
    prefix = private_loopback()
    if prefix is None and not port_8000_free():
        pytest.skip("port 8000 is taken and no private network namespace can be made (unshare --net)")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "blocks.json").write_text(json.dumps([asdict(b) for b in SESSION]))
    env = session_environment(Path(sys.executable).parent)
    env.update(READMETEST_CWD=str(work), PYTHONPATH=str(ROOT))  # PYTHONPATH: the driver, tests.readme_session
    if prefix:
        env["READMETEST_LOOPBACK_UP"] = "1"
    driver = [
        *(prefix or []),
        sys.executable,
        "-m",
        "tests.readme_session",
        str(tmp_path / "blocks.json"),
        str(tmp_path / "results.json"),
    ]
    subprocess.run(driver, cwd=ROOT, env=env, timeout=1800, check=True)
    results = {(r["document"], r["line"]): r for r in json.loads((tmp_path / "results.json").read_text())}
    for b in SESSION:
        result = results.get((b.document, b.line))
        assert result is not None, f"{b.where} did not run (a block before it failed)"
        assert result["returncode"] == 0, f"{b.where}:\n{result['stdout'][-2000:]}{result['stderr'][-3000:]}"
    by_kind = {b.kind: results[b.document, b.line] for b in SESSION}
    faces = json.loads(by_kind["pulumi-program"]["stdout"])["faces"]  # the program's outputs: the contract
    assert faces["binding_uris"] == ["oss://my-photo-bucket/family/"] and faces["region"] == "cn-hangzhou"
    assert (work / "clusters.html").stat().st_size > 10_000  # `imm-faces rehearse --html clusters.html`
    sdk = next(results[b.document, b.line]["stdout"] for b in SESSION if "alibabacloud_imm20200930" in b.code)
    groups = [line.split(" ", 2) for line in sdk.splitlines()]
    assert [count for _, count, _ in groups] == ["7"] and groups[0][2].count("oss://photos/") == 7, sdk
    client = next(results[b.document, b.line]["stdout"] for b in SESSION if "ImmClient" in b.code)
    assert client.split() == [groups[0][0], "7"]  # the same group, seen through imm_faces' client


def test_every_page_is_listed_and_linked_from_the_readme() -> None:
    """docs/README.md lists every page of docs/ (its order is the session's), and the README links to each."""
    listed = pages()
    assert sorted(listed) == sorted(set((ROOT / "docs").glob("*.md")) - {INDEX}), "docs/README.md lists each page"
    readme = (ROOT / "README.md").read_text()
    for page in [INDEX, *listed]:
        assert f"](docs/{page.name})" in readme, f"the README does not link to docs/{page.name}"


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file (outside code blocks)."""
    found, fence = set(), False
    for line in path.read_text().splitlines():
        fence ^= line.lstrip().startswith("```")
        if not fence and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_leads_to_a_page_and_a_heading(document: Path) -> None:
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):  # https://...: not ours to check offline
            continue
        file, _, anchor = target.partition("#")
        path = (document.parent / file).resolve() if file else document
        assert path.exists(), f"{document.relative_to(ROOT)}: {target}: no such file"
        assert not anchor or anchor in anchors(path), f"{document.relative_to(ROOT)}: {target}: no such heading"
