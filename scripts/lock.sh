#!/usr/bin/env bash
# Refreshes the lock files from pyproject.toml (its dependencies, its `test` extra
# and its build backend), with uv's resolver and sha256 hashes, for Python 3.11 on
# every platform (--universal: per-platform pins carry markers):
#   requirements/test.lock  what `bash scripts/test.sh` installs
#   requirements/run.lock   what `bash scripts/serve.sh` installs (the same versions)
# Both install with plain pip (`pip install --require-hashes -r ...`); only this
# script needs uv, and it brings its own pinned copy when `uv` is not that version.
#   bash scripts/lock.sh                   # every package to its newest release
#   bash scripts/lock.sh --keep            # keep the pins pyproject.toml still allows
#                                          # (after adding or changing a dependency)
#   bash scripts/lock.sh -P starlette      # other arguments go to `uv pip compile`
# Then run the suite (bash scripts/test.sh) and commit pyproject.toml and requirements/.
set -euo pipefail

UV_VERSION=0.13.9

cd "$(dirname "$0")/.."

if [ $# -eq 0 ]; then
    args=(--upgrade)
elif [ "$1" = --keep ]; then
    shift
    args=("$@")
else
    args=("$@")
fi

uv=uv
if [ "$(uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "lock.sh: installing uv $UV_VERSION into a throwaway virtualenv"
    python3 -m venv "$tmp/uv"
    "$tmp/uv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    uv=$tmp/uv/bin/uv
fi

# The build backend (pyproject.toml's [build-system] requires) is locked too: the
# scripts build the project with --no-build-isolation from the locked setuptools.
build_requires=$(python3 -c '
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')

compile=("$uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes
         --custom-compile-command "bash scripts/lock.sh" "${args[@]}")
mkdir -p requirements
printf '%s\n' "$build_requires" |
    "${compile[@]}" pyproject.toml - --extra test -o requirements/test.lock
# run.lock: the same versions as test.lock, without the test-only packages.
printf '%s\n' "$build_requires" |
    "${compile[@]}" pyproject.toml - -c requirements/test.lock -o requirements/run.lock
echo "lock.sh: wrote requirements/test.lock ($(grep -c '^[a-z]' requirements/test.lock) packages)" \
     "and requirements/run.lock ($(grep -c '^[a-z]' requirements/run.lock) packages)"
