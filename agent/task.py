"""TaskSpec: what users write by hand to describe a Go task, and how it is loaded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tools.workspace import DEFAULT_GO_VERSION, Requirement

_PACKAGE_RE = re.compile(r"^\s*package\s+(\w+)", re.M)
_IDENT_RE = re.compile(r"^[A-Za-z_]\w*$")


class TaskError(ValueError):
    """A task file that cannot be used; the message is one line naming file and field."""


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rounds: int | None = Field(default=None, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, gt=0)


class GoModExtras(BaseModel):
    model_config = ConfigDict(extra="forbid")

    go: str = DEFAULT_GO_VERSION
    require: list[Requirement] = Field(default_factory=list)


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    prompt: str = Field(min_length=1)
    tests: str = Field(min_length=1)  # the hidden test file
    package: str = "sandbox"
    visible_tests: str | None = None
    files: dict[str, str] = Field(default_factory=dict)  # starter files the model may change
    support_files: dict[str, str] = Field(default_factory=dict)  # fixed files it may not change
    reference: str | None = None  # a known-good solution (one file, or several as `files:`)
    reference_files: dict[str, str] = Field(default_factory=dict)
    go_mod: GoModExtras = Field(default_factory=GoModExtras)
    budget: Budget = Field(default_factory=Budget)
    race: bool = False  # run tests with -race (needs cgo and a C compiler)
    test_timeout: float = Field(default=10.0, gt=0)
    tags: list[str] = Field(default_factory=list)  # e.g. tier, topic

    @field_validator("package")
    @classmethod
    def _package_ident(cls, v: str) -> str:
        if not _IDENT_RE.match(v):
            raise ValueError(f"{v!r} is not a Go package name")
        return v

    # -- derived views -------------------------------------------------------
    def with_package(self, source: str) -> str:
        """A Go file's text with a package clause (task authors may leave it out)."""
        if _PACKAGE_RE.search(_strip_comments(source)):
            return source
        return f"package {self.package}\n\n{source}"

    def hidden_test_file(self) -> str:
        return self.with_package(self.tests)

    def visible_test_file(self) -> str | None:
        return self.with_package(self.visible_tests) if self.visible_tests else None

    def reference_solution(self) -> dict[str, str]:
        if self.reference_files:
            return {k: self.with_package(v) for k, v in self.reference_files.items()}
        if self.reference:
            return {"solution.go": self.with_package(self.reference)}
        return {}


def _strip_comments(src: str) -> str:
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def _field_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = _field_path(err["loc"])
    kind = err["type"]
    if kind == "missing":
        return f"field '{field}' is required"
    if kind == "extra_forbidden":
        return f"unknown field '{field}'"
    return f"field '{field}': {err['msg']}"


def _read_text(path: Path, base: Path, field: str, origin: Path) -> str:
    p = (base / path).resolve() if not Path(path).is_absolute() else Path(path)
    try:
        return p.read_text()
    except FileNotFoundError:
        raise TaskError(f"{origin}: field '{field}': file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{origin}: field '{field}': cannot read {path}: {exc}") from None


_FILE_FIELDS = {"tests_file": "tests", "visible_tests_file": "visible_tests",
                "reference_file": "reference"}


def task_from_dict(data: Any, *, origin: Path, default_id: str, base: Path) -> TaskSpec:
    """Validate one task object; `*_file` keys are read relative to `base`."""
    if not isinstance(data, dict):
        raise TaskError(f"{origin}: expected a mapping of task fields, got {type(data).__name__}")
    data = dict(data)
    for key, target in _FILE_FIELDS.items():
        if key in data:
            if target in data:
                raise TaskError(f"{origin}: give either '{target}' or '{key}', not both")
            if not isinstance(data[key], str):
                raise TaskError(f"{origin}: field '{key}': expected a path")
            data[target] = _read_text(Path(data.pop(key)), base, key, origin)
    for key in ("require",):
        for req in (data.get("go_mod") or {}).get(key, []) if isinstance(
                data.get("go_mod"), dict) else []:
            if isinstance(req, dict) and isinstance(req.get("replace"), str):
                rp = Path(req["replace"]).expanduser()
                req["replace"] = str(rp if rp.is_absolute() else (base / rp).resolve())
    data.setdefault("id", default_id)
    if isinstance(data.get("id"), int):
        data["id"] = str(data["id"])
    try:
        return TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise TaskError(f"{origin}: {_first_error(exc)}") from None


def load_task(path: str | Path) -> TaskSpec:
    """Load a YAML or JSON task file. Raises TaskError with one clear line."""
    p = Path(path)
    if not p.exists():
        raise TaskError(f"{p}: no such task file")
    if p.is_dir():
        raise TaskError(f"{p}: is a directory, expected a task file (.yaml, .yml or .json)")
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{p}: cannot read: {exc}") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise TaskError(f"{p}: YAML syntax error{where}: {problem}") from None
    except json.JSONDecodeError as exc:
        raise TaskError(f"{p}: JSON syntax error at line {exc.lineno}: {exc.msg}") from None
    if data is None:
        raise TaskError(f"{p}: the file is empty")
    return task_from_dict(data, origin=p, default_id=p.stem, base=p.parent)
