#!/usr/bin/env bash
# Set up mlm for development and run it: the README's two commands.
#
#   bash scripts/dev.sh example   install everything, run example_project end to end
#   bash scripts/dev.sh test      install everything, run the test suite (extra args go to pytest)
#
# Everything goes into .venv/ beside this repository, built with the first Python >= 3.12
# found: $MLM_PYTHON, python3.12, python3.13, python3.14, python3, then pyenv's versions.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

usage() { echo "usage: bash scripts/dev.sh example|test [pytest args...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
action=$1; shift

is_new_enough() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1
}

find_python() {
    local candidate
    for candidate in ${MLM_PYTHON:-} python3.12 python3.13 python3.14 python3 python; do
        if command -v "$candidate" >/dev/null 2>&1 && is_new_enough "$candidate"; then
            command -v "$candidate"; return 0
        fi
    done
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
        if [ -x "$candidate" ] && is_new_enough "$candidate"; then
            echo "$candidate"; return 0
        fi
    done
    return 1
}

if ! python=$(find_python); then
    echo "mlm needs Python 3.12 or newer (PyMC 6 and ArviZ 1 do not support older ones)," >&2
    echo "and none was found: tried \$MLM_PYTHON, python3.12, python3.13, python3.14, python3," >&2
    echo "python and ${PYENV_ROOT:-$HOME/.pyenv}/versions. Install Python 3.12+ (for example" >&2
    echo "'pyenv install 3.12') or point MLM_PYTHON at one, then run this again." >&2
    exit 1
fi

if [ -x .venv/bin/python ] && ! is_new_enough .venv/bin/python; then
    echo "removing .venv: it was made with a Python older than 3.12" >&2
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    echo "creating .venv with $python ($("$python" --version))" >&2
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --progress-bar off -e ".[test,console]"

# System tools some features use: Graphviz draws the model graph in `mlm report` (there is a
# plain-text fallback), and the report's test opens it in headless Chromium.
if [ "$action" = test ] && { ! command -v chromium >/dev/null || ! command -v dot >/dev/null; }; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing chromium and graphviz (Debian packages) for the report tests" >&2
        apt-get update -qq >/dev/null && \
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium graphviz >/dev/null
    else
        echo "note: chromium or graphviz is missing; the report's browser test will be skipped" >&2
        echo "(with CI set, it fails instead: CI runs every test)" >&2
    fi
fi

case "$action" in
    example)
        .venv/bin/mlm -C example_project run
        .venv/bin/mlm -C example_project status
        echo "figures: $(pwd)/example_project/figures/" ;;
    test)
        exec .venv/bin/python -m pytest "$@" ;;
    *) usage ;;
esac
