"""The build backend of the qtx package (PEP 517 and PEP 660), standard
library only.

The package is pure Python, so building it is zipping its files with the
metadata wheels carry. Doing that here, instead of through setuptools, means
the backend has no build requirement at all: pip's isolated build
environment needs nothing from an index, and a plain
``pip install ./bindings/python`` works on a machine without network access.

The name, version and summary come from pyproject.toml's [project] table.
"""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PACKAGE = "qtx"
_TAG = "py3-none-any"


def _project():
    """name, version, description and requires-python from pyproject.toml
    (a flat reading of the [project] table's simple string keys)."""
    with open(os.path.join(_ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    table = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    if table is None:
        raise RuntimeError("pyproject.toml has no [project] table")
    fields = dict(re.findall(r'^([A-Za-z-]+)\s*=\s*"([^"]*)"\s*$', table.group(1), re.M))
    for key in ("name", "version"):
        if key not in fields:
            raise RuntimeError("pyproject.toml's [project] table has no " + key)
    return fields


def _package_files():
    """(path in the wheel, path on disk) of every file of the package."""
    out = []
    base = os.path.join(_ROOT, _PACKAGE)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith(".py") or name == "py.typed":
                disk = os.path.join(dirpath, name)
                out.append((os.path.relpath(disk, _ROOT).replace(os.sep, "/"), disk))
    return out


def _metadata(p):
    lines = [
        "Metadata-Version: 2.1",
        "Name: " + p["name"],
        "Version: " + p["version"],
    ]
    if "description" in p:
        lines.append("Summary: " + p["description"])
    if "requires-python" in p:
        lines.append("Requires-Python: " + p["requires-python"])
    return "\n".join(lines) + "\n"


def _dist_info(p):
    return "%s-%s.dist-info" % (p["name"], p["version"])


def _wheel_name(p):
    return "%s-%s-%s.whl" % (p["name"], p["version"], _TAG)


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (path, digest, len(data))


def _write_wheel(wheel_directory, entries):
    """entries: (path in the wheel, bytes). Adds the dist-info files and the
    RECORD; returns the wheel's file name."""
    p = _project()
    info = _dist_info(p)
    entries = list(entries)
    entries.append((info + "/METADATA", _metadata(p).encode()))
    entries.append((info + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: qtx_build\nRoot-Is-Purelib: true\nTag: %s\n" % _TAG).encode()))
    record = [_record_line(path, data) for path, data in entries]
    record.append(info + "/RECORD,,")
    entries.append((info + "/RECORD", ("\n".join(record) + "\n").encode()))
    name = _wheel_name(p)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in entries:
            # A fixed time: the same sources give the same wheel.
            zi = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data, zipfile.ZIP_DEFLATED)
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    p = _project()
    info = os.path.join(metadata_directory, _dist_info(p))
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(info, "METADATA"), "w", encoding="utf-8") as f:
        f.write(_metadata(p))
    return _dist_info(p)


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    entries = []
    for path, disk in _package_files():
        with open(disk, "rb") as f:
            entries.append((path, f.read()))
    return _write_wheel(wheel_directory, entries)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """pip install -e: a .pth file that puts this source tree on sys.path."""
    return _write_wheel(wheel_directory, [("qtx.pth", (_ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    top = "%s-%s" % (p["name"], p["version"])
    name = top + ".tar.gz"
    files = [("pyproject.toml", os.path.join(_ROOT, "pyproject.toml")),
             ("README.md", os.path.join(_ROOT, "README.md")),
             ("_build/qtx_build.py", os.path.abspath(__file__))]
    files += _package_files()
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as t:
        for path, disk in files:
            with open(disk, "rb") as f:
                data = f.read()
            ti = tarfile.TarInfo(top + "/" + path)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return name
