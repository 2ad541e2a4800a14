#!/usr/bin/env bash
# Mutation testing of the rules the suite claims to hold (issue 14). Not run in CI: it takes a while.
#
#   scripts/mutation.sh [--ref REF] [--jobs N] [--out DIR] [MODULE...]
#
# MODULE is one of: signing auth verify paging policies outputs credentials clustering (default: all, in
# that order), or figures (all of emulator/figures.py, bookkeeping included). For each module it
#   1. exports the *committed* tree at REF (default HEAD) with `git archive` into a fresh temporary folder:
#      the checkout it is run from (where others may be editing) is never written to;
#   2. replaces the import root's symbolic links (imm_faces/runtime -> ../runtime ...) by copies, so that
#      mutmut's `mutants/` copy holds the whole `imm_faces` package;
#   3. runs mutmut 3 there (`pip install -e '.[mutation]'`) on that module only, with only the tests that
#      exercise it in the same process (mutmut's own test run maps each function to the tests that call it;
#      a test that drives the code through a child process cannot see a mutant);
#   4. prints one line per module: mutants, killed, survived, no test, timeout, and the surviving rate
#      (survived + no test, over all checked), and writes the diff of every survivor to DIR/<module>.txt.
# Python imports the copy: mutmut puts `mutants/` first on sys.path, PYTHONPATH names it too (child processes),
# and the editable install of the checkout comes after both; the script checks this after each run.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
ref=HEAD
jobs=1
out=""
modules=()
while [ $# -gt 0 ]; do
    case "$1" in
        --ref) ref="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "mutation.sh: unknown option $1" >&2; exit 2 ;;
        *) modules+=("$1"); shift ;;
    esac
done
[ ${#modules[@]} -gt 0 ] || modules=(signing auth verify paging policies outputs credentials clustering)

if [ -x "$repo/.venv/bin/python" ] && [ -z "${VIRTUAL_ENV:-}" ]; then
    source "$repo/.venv/bin/activate"
fi
command -v mutmut >/dev/null || { echo "mutation.sh: mutmut is missing: pip install -e '.[mutation]'" >&2; exit 2; }

# module -> what to mutate (only_mutate globs), which mutants (mutmut name globs, empty: all), candidate tests
spec() {
    case "$1" in
        signing)
            files='"imm_faces/runtime/auth/signing.py"'; names=""
            tests="tests/runtime/test_signing.py tests/runtime/test_signing_flows.py tests/runtime/test_signing_oracle.py
                   tests/runtime/test_client.py tests/emulator/test_front_door.py tests/emulator/test_sts.py" ;;
        auth)
            files='"imm_faces/emulator/auth.py"'; names=""
            tests="tests/emulator/test_front_door.py tests/emulator/test_auth_rules.py tests/emulator/test_sts.py
                   tests/emulator/test_fuzz_front_door.py tests/runtime/test_client.py" ;;
        verify)  # its checks and rules; run.py (the orchestration) and report.py (formats) are not mutated
            files='"imm_faces/runtime/verify/checks.py", "imm_faces/runtime/verify/consistency.py"'; names=""
            tests="tests/runtime/test_verify_rules.py tests/runtime/test_verify_consistency.py
                   tests/test_verify_end_to_end.py" ;;
        paging)
            files='"imm_faces/emulator/operations/paging.py"'; names=""
            tests="tests/emulator/test_paging.py tests/emulator/test_listing_and_lifecycle.py
                   tests/emulator/test_simple_query.py tests/emulator/test_sdk_conformance.py tests/runtime/test_client.py" ;;
        policies)
            files='"imm_faces/components/policies.py"'; names=""
            tests="tests/components/test_decisions.py tests/components/test_policy_documents.py tests/components/test_checker_policy.py
                   tests/components/test_component_mocks.py" ;;
        outputs)
            files='"imm_faces/runtime/outputs.py"'; names=""
            tests="tests/runtime/test_outputs.py tests/components/test_component_mocks.py" ;;
        credentials)
            # the chain and its sources (runtime/credentials.py is their re-exports)
            files='"imm_faces/runtime/auth/credentials.py", "imm_faces/runtime/auth/config.py", "imm_faces/runtime/auth/settings.py",
                   "imm_faces/runtime/auth/sources.py", "imm_faces/runtime/auth/profiles.py", "imm_faces/runtime/auth/chain.py"'; names=""
            tests="tests/runtime/test_credentials.py tests/runtime/test_credential_sources.py
                   tests/runtime/test_credential_chain.py tests/runtime/test_redaction.py
                   tests/components/test_provider_credentials.py" ;;
        clustering)  # the engine (clustering.py) and figures.py's rules: the face-group rule, face matching, a task's grouping
            files='"imm_faces/emulator/clustering.py", "imm_faces/emulator/figures.py"'
            names="imm_faces.emulator.clustering.* imm_faces.emulator.figures.x_figure_is_good__mutmut_*
                   imm_faces.emulator.figures.x_iou__mutmut_* imm_faces.emulator.figures.x_match_faces__mutmut_*
                   imm_faces.emulator.figures.x_cluster_pending__mutmut_* imm_faces.emulator.figures.x__good_flags__mutmut_*
                   imm_faces.emulator.figures.x_cluster_stats__mutmut_*"
            tests="tests/emulator/test_clustering.py tests/emulator/test_clustering_rules.py
                   tests/emulator/test_clustering_boundaries.py tests/emulator/test_figures_bookkeeping.py" ;;
        figures)  # figures.py whole: the rules above and the bookkeeping (record, rebuild, forget, merge, invariants)
            files='"imm_faces/emulator/figures.py"'; names=""
            tests="tests/emulator/test_clustering.py tests/emulator/test_clustering_rules.py
                   tests/emulator/test_clustering_boundaries.py tests/emulator/test_figures_bookkeeping.py
                   tests/emulator/test_listing_and_lifecycle.py tests/emulator/test_bindings.py" ;;
        *) echo "mutation.sh: unknown module $1" >&2; exit 2 ;;
    esac
}

work="$(mktemp -d /tmp/imm-faces-mutation.XXXXXX)"
out="${out:-$work/reports}"
mkdir -p "$out"
commit="$(git -C "$repo" rev-parse --short "$ref^{commit}")"  # one commit for every module, even if HEAD moves
echo "==> mutation testing of $commit in $work (reports in $out), $jobs worker(s)" >&2
summary="$out/summary.txt"
: >"$summary"

for module in "${modules[@]}"; do
    spec "$module"
    dir="$work/$module"
    mkdir -p "$dir"
    git -C "$repo" archive "$commit" | tar -x -C "$dir"
    for part in components runtime emulator; do
        rm "$dir/imm_faces/$part"
        cp -r "$dir/$part" "$dir/imm_faces/$part"
    done
    existing=""
    for t in $tests; do [ -e "$dir/$t" ] && existing="$existing \"$t\","; done
    # everything else the tests may read by path (examples, provider, Pulumi.yaml...) goes into mutants/ too
    also=""
    for f in "$dir"/* "$dir"/.[!.]*; do
        name="$(basename "$f")"
        case "$name" in imm_faces|tests|pyproject.toml|components|runtime|emulator|'.[!.]*') ;; *) also="$also \"$name\"," ;; esac
    done
    cat >>"$dir/pyproject.toml" <<EOF

[tool.mutmut]
source_paths = ["imm_faces"]
only_mutate = [$files]
also_copy = [$also]
pytest_add_cli_args_test_selection = [$existing]
pytest_add_cli_args = ["-p", "no:cacheprovider"]
use_git_change_detection = false
# workers fork from a server that never ran a test: pulumi's mocks start gRPC threads, which do not survive a fork
process_isolation = "forkserver"
EOF
    (
        cd "$dir"
        export PYTHONPATH="$dir/mutants"
        mkdir -p mutants  # before Python starts: a PYTHONPATH folder missing at start-up is never looked in again
        # the copy, not the checkout, must be what the tests import
        echo "==> $module: mutmut run (tests:$(echo $existing | tr -d '",'))" >&2
        start=$(date +%s)
        # shellcheck disable=SC2086
        mutmut run --max-children "$jobs" $names >"$out/$module.log" 2>&1 || {
            echo "mutation.sh: mutmut failed for $module, see $out/$module.log" >&2; tail -20 "$out/$module.log" >&2; exit 1; }
        where="$(cd / && python -c 'import imm_faces.runtime.outputs as m; print(m.__file__)')"
        case "$where" in "$dir"/mutants/*) ;; *) echo "mutation.sh: tests would import $where, not the copy" >&2; exit 1 ;; esac
        MUTATION_MODULE="$module" MUTATION_NAMES="$names" MUTATION_SECONDS="$(( $(date +%s) - start ))" \
            python - "$out" <<'PY' | tee -a "$summary"
import fnmatch, json, os, subprocess, sys
from pathlib import Path
from mutmut.__main__ import status_by_exit_code

out = Path(sys.argv[1])
module, names = os.environ["MUTATION_MODULE"], os.environ["MUTATION_NAMES"].split()
counts: dict[str, int] = {}
survivors = []
for meta in sorted(Path("mutants").rglob("*.py.meta")):
    for key, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        if names and not any(fnmatch.fnmatch(key, n) for n in names):
            continue
        status = status_by_exit_code[code]
        counts[status] = counts.get(status, 0) + 1
        if status in ("survived", "no tests", "not checked", "suspicious"):
            survivors.append((key, status))
total = sum(counts.values())
bad = counts.get("survived", 0) + counts.get("no tests", 0)
rate = 100.0 * bad / total if total else 0.0
with (out / f"{module}.txt").open("w") as f:
    for key, status in survivors:
        diff = subprocess.run(["mutmut", "show", key], capture_output=True, text=True).stdout
        f.write(f"{diff}\n" if diff else f"# {key}: {status}\n")
others = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k not in ("killed", "survived", "no tests"))
print(f"{module:12} mutants {total:4}  killed {counts.get('killed', 0):4}  survived {counts.get('survived', 0):3}  "
      f"no test {counts.get('no tests', 0):3}  surviving {rate:5.1f}%  ({others or 'nothing else'}; "
      f"{os.environ['MUTATION_SECONDS']} s)")
PY
    )
done
echo "==> summary ($summary); survivors' diffs in $out/<module>.txt" >&2
cat "$summary"
