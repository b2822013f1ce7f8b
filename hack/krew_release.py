#!/usr/bin/env python3
"""Build the krew archive of `kubectl estuary` and the manifest that names it.

    python hack/krew_release.py [--out dist/krew] [--url-base https://github.com/<org>/estuary/releases/download]

The archive holds the launcher (deploy/krew/kubectl-estuary), kubectl's completion hook and
Estuary's own wheel (pure Python; its dependencies come from PyPI or PIP_INDEX_URL on first use,
which is why one archive serves Linux and macOS on any CPU). A self-contained binary is not
offered: pydantic's compiled core would tie it to one CPython version per platform.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
KREW_DIR = REPO_ROOT / "deploy" / "krew"
SCRIPTS = ("kubectl-estuary", "kubectl_complete-estuary")


def build_wheel(into: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(into),
            str(REPO_ROOT),
        ],
        check=True,
    )
    (wheel,) = into.glob("estuary-*.whl")
    return wheel


def archive(wheel: Path, out: Path, version: str) -> Path:
    path = out / f"kubectl-estuary-v{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name in SCRIPTS:
            tar.add(KREW_DIR / name, arcname=name)
        tar.add(wheel, arcname=wheel.name)
    return path


def manifest(version: str, url: str, sha256: str) -> dict:  # type: ignore[type-arg]
    doc = yaml.safe_load((KREW_DIR / "estuary.yaml").read_text())
    doc["spec"]["version"] = f"v{version}"
    (platform,) = doc["spec"]["platforms"]
    platform.update(uri=url, sha256=sha256)
    return doc  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "dist" / "krew")
    parser.add_argument("--url-base", default="https://github.com/estuary-dev/estuary/releases/download")
    args = parser.parse_args(argv)
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        built = archive(build_wheel(Path(tmp)), args.out, version)
    sha256 = hashlib.sha256(built.read_bytes()).hexdigest()
    url = f"{args.url_base}/v{version}/{built.name}"
    (args.out / "estuary.yaml").write_text(yaml.safe_dump(manifest(version, url, sha256), sort_keys=False))
    print(f"wrote {built} (sha256 {sha256}) and {args.out / 'estuary.yaml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
