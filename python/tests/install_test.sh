#!/usr/bin/env bash
# The package installs as README says, offline, into a virtual environment made from
# Debian's Python, and every module of the source tree imports from the installed copy
# (not from the source tree), with the shared library of this build.
# usage: install_test.sh PYTHON3 SOURCE_DIR WORK_DIR LIBRPUSIM
set -euo pipefail
py=$1 src=$2 work=$3 lib=$4
rm -rf "$work" && mkdir -p "$work"
"$py" -m venv --system-site-packages "$work/venv"
# pip builds in the tree it is given (egg-info, build/): a copy keeps the sources clean
cp -r "$src/python" "$work/python"
"$work/venv/bin/pip" install -q --no-build-isolation --no-index "$work/python"
cd "$work"   # away from the source tree
modules=$(cd "$src/python" && find rpusim -name '*.py' | sed 's/\.py$//; s#/__init__$##; s#/#.#g' | sort)
n=$(echo "$modules" | wc -l)
env -u PYTHONPATH RPUSIM_LIBRARY="$lib" "$work/venv/bin/python" - $modules <<'PY'
import importlib, os, sys
bad = []
for m in sys.argv[1:]:
    mod = importlib.import_module(m)
    if "/venv/" not in os.path.realpath(mod.__file__):
        bad.append(f"{m} imported from {mod.__file__}, not from the installed package")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
echo "install_test: $n modules import from the installed package"
