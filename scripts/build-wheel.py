"""Writes the ltd wheel: the ltd_client package with the ltd and ltctl binaries in ltd_client/bin (called by
scripts/package wheel, which builds the binaries and finds the glibc floor; see docs/PACKAGING.md).

usage: python3 scripts/build-wheel.py VERSION PLATFORM_TAG BINDIR OUTDIR
"""

import base64
import hashlib
import os
import sys
import zipfile

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
version, platform, bindir, outdir = sys.argv[1:5]
client = os.path.join(root, "clients", "python")
name = "ltd"
dist_info = "%s-%s.dist-info" % (name, version)
wheel_name = "%s-%s-py3-none-%s.whl" % (name, version, platform)

with open(os.path.join(client, "README.md"), encoding="utf-8") as f:
    readme = f.read()
metadata = "\n".join([
    "Metadata-Version: 2.1",
    "Name: %s" % name,
    "Version: %s" % version,
    "Summary: ltd, ltctl and the Python client: watch Keras-identical linear regression training step by step",
    "Requires-Python: >=3.9",
    "Provides-Extra: plot",
    "Requires-Dist: matplotlib ; extra == 'plot'",
    "Provides-Extra: pandas",
    "Requires-Dist: pandas ; extra == 'pandas'",
    "Description-Content-Type: text/markdown",
    "",
    readme,
])
wheel = "\n".join(["Wheel-Version: 1.0", "Generator: ltd scripts/build-wheel.py", "Root-Is-Purelib: false",
                   "Tag: py3-none-%s" % platform, ""])
entry_points = "[console_scripts]\nltd = ltd_client.__main__:ltd\nltctl = ltd_client.__main__:ltctl\n"

files = []  # (archive name, bytes, executable)
package = os.path.join(client, "ltd_client")
for entry in sorted(os.listdir(package)):
    if entry.endswith(".py"):
        with open(os.path.join(package, entry), "rb") as f:
            files.append(("ltd_client/" + entry, f.read(), False))
for binary in ("ltd", "ltctl"):
    with open(os.path.join(bindir, binary), "rb") as f:
        files.append(("ltd_client/bin/" + binary, f.read(), True))
files += [(dist_info + "/METADATA", metadata.encode(), False), (dist_info + "/WHEEL", wheel.encode(), False),
          (dist_info + "/entry_points.txt", entry_points.encode(), False)]


def digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


record = "".join("%s,%s,%d\n" % (path, digest(data), len(data)) for path, data, _ in files)
record += dist_info + "/RECORD,,\n"
files.append((dist_info + "/RECORD", record.encode(), False))

os.makedirs(outdir, exist_ok=True)
target = os.path.join(outdir, wheel_name)
with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as z:
    for path, data, executable in files:
        info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
        info.external_attr = ((0o100755 if executable else 0o100644) << 16)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, data, compresslevel=9)
print(target)
