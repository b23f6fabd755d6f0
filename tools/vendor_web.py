"""Refresh the browser libraries the web app vendors, from the npm registry, pinned.

    python tools/vendor_web.py            # fetch the pinned versions, copy, write the manifest
    python tools/vendor_web.py --check    # fetch again and fail if any vendored byte differs

`npm pack` fetches each pinned tarball; only the files the pages import are copied, under
`node/web/static/vendor/<package>@<version>/` (relative imports kept as published) and, for
tests only, axe-core under `tests/browser/vendor/`. `node/web/vendor.json` records the SHA-256
of every file; tests/test_web_vendor.py checks the files against it, and the pages load them
with Subresource Integrity computed from the same bytes. No bundler: the published ES modules
are served as they are.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "node" / "web" / "static" / "vendor"
TEST_VENDOR = ROOT / "tests" / "browser" / "vendor"
MANIFEST = ROOT / "node" / "web" / "vendor.json"

# package, version, files to copy (paths inside the tarball's package/ folder), destination
PACKAGES: list[tuple[str, str, list[str], Path]] = [
    ("@noble/ed25519", "3.2.0", ["index.js", "LICENSE"], STATIC),
    ("@noble/hashes", "2.4.0", ["argon2.js", "blake2.js", "sha2.js", "_blake.js", "_md.js", "_u64.js",
                                "utils.js", "LICENSE"], STATIC),
    ("@noble/ciphers", "2.4.0", ["salsa.js", "_arx.js", "_poly1305.js", "utils.js", "LICENSE"],
     STATIC),
    ("canonicalize", "5.1.0", ["lib/canonicalize.js", "LICENSE"], STATIC),
    ("axe-core", "4.14.1", ["axe.min.js", "LICENSE"], TEST_VENDOR),
]


def folder_name(package: str, version: str) -> str:
    return f"{package.replace('/', '-').lstrip('@')}@{version}"


def fetch(package: str, version: str, files: list[str], into: Path) -> dict[str, bytes]:
    out = subprocess.run(["npm", "pack", "--silent", f"{package}@{version}"], cwd=into,
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()
    tarball = into / out[-1]
    got: dict[str, bytes] = {}
    with tarfile.open(tarball) as tar:
        for name in files:
            member = tar.extractfile(f"package/{name}")
            if member is None:
                raise SystemExit(f"{package}@{version} has no {name}")
            got[name] = member.read()
    return got


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    if shutil.which("npm") is None:
        print("vendor_web: npm is needed to fetch from the npm registry", file=sys.stderr)
        return 2
    manifest: dict[str, dict[str, str]] = {}
    differs = []
    with tempfile.TemporaryDirectory() as tmp:
        for package, version, files, dest in PACKAGES:
            folder = dest / folder_name(package, version)
            for name, data in fetch(package, version, files, Path(tmp)).items():
                path = folder / Path(name).name
                rel = path.relative_to(ROOT).as_posix()
                manifest[rel] = {"package": f"{package}@{version}",
                                 "sha256": hashlib.sha256(data).hexdigest()}
                if args.check:
                    if not path.exists() or path.read_bytes() != data:
                        differs.append(rel)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
    if args.check:
        for rel in differs:
            print(f"vendor_web: {rel} differs from the registry's", file=sys.stderr)
        return 1 if differs else 0
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"vendored {len(manifest)} files; manifest {MANIFEST.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
