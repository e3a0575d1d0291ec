"""The image's install, made once per run: the wheel built from the image's build context, in a
fresh virtual environment (dependencies from the package index, through pip's cache)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from deploy_image import ImageInstall, build_context, build_wheel


@pytest.fixture(scope="session")
def image_install(tmp_path_factory: pytest.TempPathFactory) -> ImageInstall:
    root = tmp_path_factory.mktemp("image")
    context = build_context(root / "context")
    wheel = build_wheel(context, root / "build")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                           str(wheel)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return ImageInstall(context, wheel, venv)
