#!/usr/bin/env bash
# Provides the real Pulumi engine: the `pulumi` CLI and its language hosts, built from Pulumi's published Go
# modules through the Go module proxy (nothing of Pulumi's is committed here), cached by version.
#
#   scripts/pulumi-engine.sh            build what is missing (minutes, once), print the directory holding
#                                       pulumi, pulumi-language-python, pulumi-language-python-exec,
#                                       pulumi-resource-pulumi-python, pulumi-language-nodejs,
#                                       pulumi-resource-pulumi-nodejs and pulumi-language-yaml
#   scripts/pulumi-engine.sh --export   the same, as a line for eval: export PATH="<dir>:$PATH"
#   scripts/pulumi-engine.sh --check    print the directory if it is already complete (exit 0), build nothing
#                                       (exit 1 otherwise)
#   scripts/pulumi-engine.sh --versions the pinned versions, one per line
#
# A `pulumi` already on PATH is used when it is v3.139.0 or later (the first CLI that passes the stack's
# config to dynamic providers, pulumi PR #17673); set IMM_FACES_PULUMI_FROM_PATH=0 to build ours anyway. The
# language hosts beside it or on PATH are used too; only those it lacks are built.
#
# Cache: ${XDG_CACHE_HOME:-~/.cache}/imm-faces/pulumi-engine/ (IMM_FACES_ENGINE_CACHE overrides it). One folder
# per component and version, built in a temporary folder and moved into place when complete, under a lock, so
# the script is idempotent and two runs at once build once. The Go module and build caches are Go's own
# (GOMODCACHE, GOCACHE). Needs Go 1.26 and the Go module proxy; nothing is downloaded when everything is cached.
#
# Versions (what the Go module proxy serves, checked 2026-12-07):
# - CLI: module github.com/pulumi/pulumi/pkg/v3 v3.276.0, package .../pkg/v3/cmd/pulumi.
# - The language hosts of v3.276.0 live in modules of their own inside pulumi/pulumi, which has no tags for
#   them, so they can only be asked for as pseudo-versions of a commit. The proxy refused every one tried
#   ("403 This module version is not available"):
#     github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 and
#     github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3 (and .../sdk/go/pulumi-language-go/v3)
#     @latest, @v/list, v3.0.0-20260819165155-0ac56e876614 (the v3.252.0 release commit),
#     v3.0.0-20260713105300-31997188e2ca (v3.259.0), v3.0.0-20241010194211-2d3b850b6020 (v3.136.1, which
#     pulumi-docker-build requires). v3.276.0's own commit is unknown here: the proxy's .info has no Origin.
#   So the hosts come from the last sdk/v3 releases that still held them inside the sdk/v3 module (served):
#   Python: sdk/v3 v3.79.0, package github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python (it
#     moved to its own module in v3.80.0, Aug 2023);
#   Node.js: sdk/v3 v3.68.0, package github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs (it
#     moved out in v3.69.0, May 2023).
#   Each is built in its own throwaway module (one module cannot hold two sdk/v3 versions). What an older host
#   under the v3.276.0 CLI does and does not do is in docs/engine.md.
# - YAML: github.com/pulumi/pulumi-yaml v1.25.0, package .../cmd/pulumi-language-yaml (its own module).
# - The helper scripts the release archive ships beside the CLI are files of the sdk/v3 v3.276.0 module zip:
#   python/cmd/pulumi-language-python-exec, python/dist/pulumi-resource-pulumi-python,
#   nodejs/dist/pulumi-resource-pulumi-nodejs; copied from the Go module cache, made executable.
set -euo pipefail

PULUMI_VERSION=3.276.0
PYTHON_HOST_SDK=3.79.0
NODEJS_HOST_SDK=3.68.0
YAML_VERSION=1.25.0
MIN_PATH_PULUMI=3.139.0
RECIPE=1 # bump when the way a component is built changes: the cache keys carry it

mode=print
case "${1:-}" in
    "" | --print) ;;
    --export) mode=export ;;
    --check) mode=check ;;
    --versions)
        printf 'pulumi %s\npulumi-language-python sdk/v3 %s\npulumi-language-nodejs sdk/v3 %s\npulumi-language-yaml %s\n' \
            "v$PULUMI_VERSION" "v$PYTHON_HOST_SDK" "v$NODEJS_HOST_SDK" "v$YAML_VERSION"
        exit 0 ;;
    -h | --help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pulumi-engine.sh: unknown option $1 (--print, --export, --check, --versions)" >&2; exit 2 ;;
esac

CACHE=${IMM_FACES_ENGINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/imm-faces/pulumi-engine}
say() { echo "pulumi-engine: $*" >&2; }

# version_at_least A B: A >= B, both x.y.z without a leading v.
version_at_least() {
    [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

# The `pulumi` on PATH, when it is new enough and not one of ours: its real path; else nothing.
path_pulumi() {
    [ "${IMM_FACES_PULUMI_FROM_PATH:-1}" != 0 ] || return 0
    local found real version
    found=$(command -v pulumi 2>/dev/null) || return 0
    real=$(readlink -f "$found")
    case "$real" in "$CACHE"/*) return 0 ;; esac
    version=$("$real" version 2>/dev/null | tr -d 'v\r\n' | sed 's/[-+].*//') || return 0
    if version_at_least "$version" "$MIN_PATH_PULUMI"; then
        echo "$real"
    else
        say "ignoring the pulumi on PATH ($found, v$version): v$MIN_PATH_PULUMI or later is needed"
    fi
}

from_path=$(path_pulumi)
if [ -n "$from_path" ]; then
    key="path-$(printf '%s %s' "$from_path" "$("$from_path" version)" | sha256sum | cut -c1-12)-r$RECIPE"
else
    key="v$PULUMI_VERSION-py$PYTHON_HOST_SDK-node$NODEJS_HOST_SDK-yaml$YAML_VERSION-r$RECIPE"
fi
engine="$CACHE/engine-$key"
TOOLS=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python
    pulumi-language-nodejs pulumi-resource-pulumi-nodejs pulumi-language-yaml)

complete() {
    local tool
    [ -f "$1/.complete" ] || return 1
    for tool in "${TOOLS[@]}"; do [ -x "$1/$tool" ] || return 1; done
}

finish() {
    case "$mode" in
        export) printf 'export PATH="%s:$PATH"\n' "$engine" ;;
        *) printf '%s\n' "$engine" ;;
    esac
    exit 0
}

if complete "$engine"; then finish; fi
if [ "$mode" = check ]; then
    say "not built yet: run scripts/pulumi-engine.sh (needs Go and the Go module proxy)"
    exit 1
fi
command -v go >/dev/null 2>&1 || { say "Go is needed to build the Pulumi engine (go1.26, see docs/engine.md)"; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # another run may be building: wait for it, then reuse what it built
if complete "$engine"; then finish; fi

export GOFLAGS="${GOFLAGS:-} -buildvcs=false" GOTOOLCHAIN=local GO111MODULE=on
SDK_VERSION_VAR=github.com/pulumi/pulumi/sdk/v3/go/common/version.Version

# build_component NAME VERSION VERSION_VAR=VALUE PACKAGE@VERSION [MODULE@VERSION...]: go build the package into
# $CACHE/NAME-VERSION-rN, the modules given after it raised to those versions,
# from a throwaway module that requires them (`go install pkg@version` refuses modules with replace directives,
# which pulumi's go.mod files have; replaces of dependencies are ignored in another main module).
build_component() {
    local name=$1 version=$2 xflag=$3 out work started
    shift 3
    out="$CACHE/$name-$version-r$RECIPE"
    if [ -f "$out/.complete" ]; then echo "$out"; return; fi
    started=$(date +%s)
    say "building $name $version (Go, from the module proxy; the first build takes minutes)"
    work=$(mktemp -d "$CACHE/.build-$name.XXXXXX")
    (
        cd "$work"
        printf 'module imm-faces.local/build/%s\n\ngo 1.26\n' "$name" >go.mod
        go get "$@" >build.log 2>&1 || { cat build.log >&2; exit 1; }
        go build -ldflags "-s -w -X $xflag" -o "$work/bin/" "${1%@*}" >>build.log 2>&1 \
            || { cat build.log >&2; exit 1; }
    ) || { rm -rf "$work"; say "building $name $version failed"; exit 1; }
    touch "$work/bin/.complete"
    rm -rf "$out"
    mv "$work/bin" "$out"
    rm -rf "$work"
    say "built $name $version in $(($(date +%s) - started)) s"
    echo "$out"
}

# The helper scripts of the sdk/v3 module, from the Go module cache (downloaded if missing).
sdk_scripts() {
    local out="$CACHE/sdk-scripts-$PULUMI_VERSION-r$RECIPE" dir work
    if [ -f "$out/.complete" ]; then echo "$out"; return; fi
    dir=$(cd "$CACHE" && go mod download -json "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
    [ -n "$dir" ] && [ -d "$dir" ] || { say "go mod download of sdk/v3@v$PULUMI_VERSION gave no folder"; exit 1; }
    work=$(mktemp -d "$CACHE/.build-sdk-scripts.XXXXXX")
    install -m 0755 "$dir/python/cmd/pulumi-language-python-exec" "$dir/python/dist/pulumi-resource-pulumi-python" \
        "$dir/nodejs/dist/pulumi-resource-pulumi-nodejs" "$work/"
    touch "$work/.complete"
    rm -rf "$out"
    mv "$work" "$out"
    echo "$out"
}

# link NAME: the tool beside (or on PATH as seen by) the PATH pulumi, if any.
beside_path_pulumi() {
    local found
    if [ -x "$(dirname "$from_path")/$1" ]; then echo "$(dirname "$from_path")/$1"; return; fi
    found=$(command -v "$1" 2>/dev/null) || return 0
    case "$(readlink -f "$found")" in "$CACHE"/*) return 0 ;; esac
    echo "$found"
}

staging=$(mktemp -d "$CACHE/.engine.XXXXXX")
trap 'rm -rf "$staging"' EXIT

# Every file is placed as a hard link or copy, not a symbolic link, where a host finds its helpers beside
# its own (resolved) path: pulumi-language-python runs pulumi-language-python-exec from its own folder.
place() { ln -f "$1" "$staging/$2" 2>/dev/null || cp -f "$1" "$staging/$2"; }

if [ -n "$from_path" ]; then
    say "using the pulumi on PATH: $from_path ($("$from_path" version))"
    ln -s "$from_path" "$staging/pulumi"
else
    cli=$(build_component cli "v$PULUMI_VERSION" "$SDK_VERSION_VAR=v$PULUMI_VERSION" \
        "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION" \
        "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION")
    place "$cli/pulumi" pulumi
fi

scripts=""
need_scripts() { [ -n "$scripts" ] || scripts=$(sdk_scripts); }
# python: host and exec must sit together, so either both from beside the PATH pulumi or both ours.
if [ -n "$from_path" ] && [ -n "$(beside_path_pulumi pulumi-language-python)" ] \
    && [ -n "$(beside_path_pulumi pulumi-language-python-exec)" ]; then
    ln -s "$(beside_path_pulumi pulumi-language-python)" "$staging/pulumi-language-python"
    ln -s "$(beside_path_pulumi pulumi-language-python-exec)" "$staging/pulumi-language-python-exec"
else
    py=$(build_component python-host "v$PYTHON_HOST_SDK" "$SDK_VERSION_VAR=v$PYTHON_HOST_SDK" \
        "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python@v$PYTHON_HOST_SDK")
    need_scripts
    place "$py/pulumi-language-python" pulumi-language-python
    place "$scripts/pulumi-language-python-exec" pulumi-language-python-exec
fi
for tool in pulumi-resource-pulumi-python pulumi-resource-pulumi-nodejs; do
    if [ -n "$from_path" ] && [ -n "$(beside_path_pulumi $tool)" ]; then
        ln -s "$(beside_path_pulumi $tool)" "$staging/$tool"
    else
        need_scripts
        place "$scripts/$tool" "$tool"
    fi
done
# host TOOL NAME VERSION VERSION_VAR=VALUE PACKAGE@VERSION: the host beside the PATH pulumi, else ours.
host() {
    local tool=$1 found built
    shift
    found=$([ -z "$from_path" ] || beside_path_pulumi "$tool")
    if [ -n "$found" ]; then
        ln -s "$found" "$staging/$tool"
    else
        built=$(build_component "$@")
        place "$built/$tool" "$tool"
    fi
}
host pulumi-language-nodejs nodejs-host "v$NODEJS_HOST_SDK" "$SDK_VERSION_VAR=v$NODEJS_HOST_SDK" \
    "github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs@v$NODEJS_HOST_SDK"
host pulumi-language-yaml yaml-host "v$YAML_VERSION" "github.com/pulumi/pulumi-yaml/pkg/version.Version=v$YAML_VERSION" \
    "github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml@v$YAML_VERSION"

"$staging/pulumi" version >/dev/null || { say "the assembled pulumi does not run"; exit 1; }
touch "$staging/.complete"
rm -rf "$engine"
mv "$staging" "$engine"
trap - EXIT
say "engine ready: $engine ($("$engine/pulumi" version))"
finish
