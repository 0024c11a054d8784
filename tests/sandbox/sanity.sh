#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection laid out as ansible_collections/containarium/fleet.
# ansible-test fetches a get-pip script for each test venv from a host this machine cannot reach;
# it uses a cached copy when present, so the offline stand-in is put there first.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"
PY="$REPO/.venv/bin/python"
# A private copy per run, so parallel runs (and editors of the checkout) never collide.
mkdir -p "$REPO/build"
WORK="$(mktemp -d "$REPO/build/sanity.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
DEST="$WORK/ansible_collections/containarium/fleet"

# The shellcheck sanity test is skipped (not failed) without the tool; make it run.
command -v shellcheck >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null; }

pip_version="$("$PY" - <<'PY'
import re, ansible_test, pathlib
src = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)"
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cp tests/sandbox/get_pip_standin.py "$cache"

mkdir -p "$DEST"
tar -C "$REPO" --exclude=./.venv --exclude=./build --exclude=./.git --exclude='__pycache__' \
    --exclude=./.pytest_cache --exclude=./tests/output -cf - . | tar -C "$DEST" -xf -
cd "$DEST"
# A git repository lets ansible-test list exactly the tracked-or-new files.
git init -q . && git add -A >/dev/null
"$REPO/.venv/bin/ansible-test" sanity --venv --python 3.11 --color no "$@"
