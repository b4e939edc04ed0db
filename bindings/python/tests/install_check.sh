#!/bin/sh
# Installs the package with the documented command, `pip install
# ./bindings/python`, into a new virtual environment of Debian's
# interpreter, on a machine that may have no network: the build backend
# needs nothing from an index. Then imports the installed copy (not the
# source tree) and checks it reports this library's version.
#
#   install_check.sh SOURCE_DIR WORK_DIR        (QTX_HOST_LIBRARY set)
set -eu
src=$1
work=$2
rm -rf "$work"
/usr/bin/python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --disable-pip-version-check --quiet "$src/bindings/python"
cd "$work"
"$work/venv/bin/python" - "$work/venv" <<'PY'
import sys
import qtx
assert qtx.__file__.startswith(sys.argv[1]), qtx.__file__
import importlib.resources
assert importlib.resources.files("qtx").joinpath("py.typed").is_file(), "py.typed is missing"
print("installed", qtx.__file__, "library", qtx.library_version())
PY
