"""The Dockerfile read as its instructions, the .dockerignore matched as Docker does, and the image's
build context and wheel made here without a container engine (what ``docker build`` would do)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from deploy_render import REPO

DOCKERFILE = REPO / "Dockerfile"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, instruction: str) -> list[str]:
        return [args for op, args in self.instructions if op == instruction]


@dataclass(frozen=True)
class ImageInstall:
    context: Path
    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def console_script(self) -> Path:
        return self.venv / "bin" / "clustermesh-apiserver"


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ``ARG`` defaults and the stages, each with its instructions (continuations joined)."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for entry in logical:
        op, _, args = entry.strip().partition(" ")
        op, args = op.upper(), " ".join(args.split())
        if op == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, words[0]))
        elif not stages and op == "ARG":
            key, _, value = args.partition("=")
            global_args[key] = value
        else:
            stages[-1].instructions.append((op, args))
    return global_args, stages


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _match(pattern: str, path: str) -> bool:
    """Docker's matcher (moby patternmatcher): the pattern matches the path or one of its parents."""
    regex = _regex(pattern.strip("/"))
    parts = path.split("/")
    return any(regex.fullmatch("/".join(parts[:depth])) for depth in range(1, len(parts) + 1))


def in_context(path: str, patterns: list[str] | None = None) -> bool:
    """Whether ``path`` (relative to the repository) is sent to the build: the last matching
    pattern decides, ``!`` re-includes."""
    included = True
    for pattern in dockerignore_patterns() if patterns is None else patterns:
        negated = pattern.startswith("!")
        if _match(pattern[1:] if negated else pattern, path):
            included = negated
    return included


def build_context(target: Path) -> Path:
    """The files of the repository that ``docker build .`` sends, copied to ``target``."""
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, text=True, check=True).stdout.split()
    for rel in tracked:
        source = REPO / rel
        if source.is_file() and in_context(rel):
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)
    return target


def builder_copy_sources(stage: Stage) -> list[str]:
    """Source paths of the stage's ``COPY`` instructions (the last word is the destination)."""
    sources: list[str] = []
    for args in stage.all("COPY"):
        words = [w for w in args.split() if not w.startswith("--")]
        sources += words[:-1]
    return sources


def project_version() -> str:
    version: str = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    return version


def build_wheel(context: Path, out: Path) -> Path:
    """The builder stage's ``COPY`` into a source tree, then its ``pip wheel`` (our wheel only:
    the dependencies come from the index at install)."""
    _, stages = parse_dockerfile(DOCKERFILE.read_text())
    builder = stages[0]
    src = out / "src"
    src.mkdir(parents=True)
    for rel in builder_copy_sources(builder):
        source = context / rel.rstrip("/")
        if source.is_dir():
            shutil.copytree(source, src / rel.rstrip("/"))
        else:
            shutil.copy2(source, src / rel)
    wheels = out / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
                    f"--wheel-dir={wheels}", str(src)], check=True, capture_output=True, timeout=600)
    built = list(wheels.glob("*.whl"))
    assert len(built) == 1, built
    return built[0]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value
