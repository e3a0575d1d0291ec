"""The image's install, made once per run: the wheel built from the image's build context, in a
fresh virtual environment (dependencies from the package index, through pip's cache). It lives in
a directory that the pod's non-root user can read (pytest's own temporary root is mode 0700)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest
from deploy_image import ImageInstall, build_context, build_wheel
from deploy_render import readable_tmp


@pytest.fixture(scope="session")
def image_install() -> Iterator[ImageInstall]:
    root = readable_tmp("cmdeploy-image-")
    try:
        context = build_context(root / "context")
        wheel = build_wheel(context, root / "build")
        venv = root / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                               "--disable-pip-version-check", str(wheel)], capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr
        yield ImageInstall(context, wheel, venv)
    finally:
        shutil.rmtree(root, ignore_errors=True)
