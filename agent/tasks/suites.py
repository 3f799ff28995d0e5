"""Suites: many tasks at once, from our own task files or from suites people already have.

`load_suite(path)` accepts
- a directory of task files (`.yaml`, `.yml`, `.json`, `.jsonl`), searched recursively in
  sorted order, so task order and ids are the same on every machine;
- a single task file (YAML or JSON; a JSON list holds several tasks);
- a JSONL file (optionally gzipped), one task object per line, whose format is detected
  from its fields: our own `TaskSpec` fields, the research log's
  (`id`, `prompt`, `reference`, `metadata: {module, tests}`), or HumanEval-X Go
  (`task_id`, `prompt`, `canonical_solution`, `test_setup`, `test`, `example_test`, …).

Every problem is a `TaskError` whose one line names the file (and line, for JSONL).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from agent.golang.fixes import AppliedFix, fix_imports_source
from agent.golang.source import package_of
from agent.tasks.spec import (  # DEFAULT_GOCODE, gocode_root: still importable from here
    DEFAULT_GOCODE,  # noqa: F401
    FROM_FILE,
    TaskError,
    TaskSpec,
    first_error,
    gocode_root,
    load_task,
    parse_task_text,
    read_task_bytes,
    read_task_file,
    task_from_dict,
)
from tools.runner import TEST_FUNC_RE
from tools.workspace import Requirement

TESTIFY = "github.com/stretchr/testify"
# testify's own version is not recorded in its sources; any valid v1 works, since the
# requirement is always replaced by the local directory.
TESTIFY_VERSION = "v1.8.1"
TASK_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl", ".jsonl.gz")
SUITE_FILE_MAX_BYTES = 64 * 2**20  # a JSONL or JSON suite file, after gunzip

_HUMANEVAL_X_KEYS = {"task_id", "prompt", "canonical_solution", "test"}


class TaskSuite(BaseModel):
    """The tasks of one suite, in a stable order, and how they were read."""

    name: str
    path: str
    format: str  # tasks, research-log, humaneval-x (or "mixed" for a directory of several)
    tasks: list[TaskSpec]
    # Import fixes made while importing, by task id: published suites contain solutions and
    # tests that do not build as written.
    fixes: dict[str, list[AppliedFix]] = Field(default_factory=dict)

    def task(self, task_id: str) -> TaskSpec:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)


def testify_requirements(root: Path) -> list[Requirement]:
    """go.mod requirements serving testify and its dependencies from local sources.

    The dependencies are read from testify's own go.mod, so another packaged version of
    testify brings the versions it needs. Raises TaskError naming what is missing.
    """
    testify = root / TESTIFY
    hint = ("install Debian's golang-github-stretchr-testify-dev or point "
            "GUILD_AGENT_GOCODE at a directory laid out like /usr/share/gocode/src")
    go_mod = testify / "go.mod"
    if not go_mod.is_file():
        raise TaskError(f"the tests import testify, but {testify} holds no testify sources; "
                        f"{hint}")
    reqs = [Requirement(module=TESTIFY, version=TESTIFY_VERSION, replace=str(testify))]
    for module, version in _go_mod_requires(go_mod.read_text()):
        src = root / module
        if not src.is_dir():
            raise TaskError(f"testify needs {module} {version}, but {src} does not exist; "
                            f"{hint}")
        reqs.append(Requirement(module=module, version=version, replace=str(src)))
    return reqs


def _go_mod_requires(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    in_block = False
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if in_block:
            if line == ")":
                in_block = False
            elif line:
                parts = line.split()
                if len(parts) >= 2:
                    out.append((parts[0], parts[1]))
        elif line.startswith("require ("):
            in_block = True
        elif line.startswith("require "):
            parts = line.split()
            if len(parts) >= 3:
                out.append((parts[1], parts[2]))
    return out


# -- importers ---------------------------------------------------------------------------

def detect_format(obj: Any) -> str:
    """`humaneval-x`, `research-log` or `tasks` (our own TaskSpec fields)."""
    if isinstance(obj, dict):
        if obj.keys() >= _HUMANEVAL_X_KEYS:
            return "humaneval-x"
        if isinstance(obj.get("metadata"), dict) and "tests" not in obj and (
                "tests" in obj["metadata"]):
            return "research-log"
    return "tasks"


def _fix_file(src: str, label: str, fixes: list[AppliedFix]) -> str:
    fixed, applied = fix_imports_source(src, label)
    fixes += applied
    return fixed


def _rename_tests(src: str, taken: set[str], suffix: str = "Examples") -> str:
    """Rename test functions of `src` that `taken` already declares (same package)."""
    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in taken:
            return m.group(0)
        new = name + suffix
        while new in taken:
            new += "_"
        return m.group(0).replace(name, new, 1)
    return TEST_FUNC_RE.sub(repl, src)


def humaneval_x_task(obj: dict[str, Any], origin: str, *, gocode: Path | None = None
                     ) -> tuple[TaskSpec, list[AppliedFix]]:
    """One HumanEval-X Go problem as a TaskSpec (package main), with its imports repaired.

    `example_test` becomes the visible tests and `test` the hidden ones; the reference is
    `prompt` + `canonical_solution`. Both test files are the `test_setup` (package clause
    and imports) followed by their tests; a test function both declare is renamed in the
    visible file, since the two files share a package when run together.
    """
    for key in ("task_id", "prompt", "canonical_solution", "test"):
        if not isinstance(obj.get(key), str):
            raise TaskError(f"{origin}: HumanEval-X field '{key}' must be a string, got "
                            f"{type(obj.get(key)).__name__}")
    for key in ("test_setup", "example_test"):
        if obj.get(key) is not None and not isinstance(obj[key], str):
            raise TaskError(f"{origin}: HumanEval-X field '{key}' must be a string, got "
                            f"{type(obj[key]).__name__}")
    task_id = obj["task_id"]
    setup = obj.get("test_setup") or 'package main\n\nimport (\n\t"testing"\n)\n'
    fixes: list[AppliedFix] = []
    reference = _fix_file(obj["prompt"] + obj["canonical_solution"], "solution.go", fixes)
    hidden = _fix_file(setup.rstrip("\n") + "\n\n" + obj["test"], "hidden_test.go", fixes)
    visible = None
    example = obj.get("example_test")
    if isinstance(example, str) and example.strip():
        example = _rename_tests(example, set(TEST_FUNC_RE.findall(hidden)))
        visible = _fix_file(setup.rstrip("\n") + "\n\n" + example, "visible_test.go", fixes)
    requires: list[Requirement] = []
    if TESTIFY in hidden or (visible and TESTIFY in visible):
        try:
            requires = testify_requirements(gocode or gocode_root())
        except TaskError as exc:
            raise TaskError(f"{origin}: {exc}") from None
    prompt = (
        "Complete the Go function below (package main). Answer with the whole function "
        "and the imports it needs.\n\n```go\n" + obj["prompt"].rstrip() + "\n```\n")
    data = {"id": task_id, "prompt": prompt, "package": "main", "reference": reference,
            "tests": hidden, "visible_tests": visible, "tags": ["humaneval-x"],
            "go_mod": {"require": [r.model_dump() for r in requires]}}
    try:
        task = TaskSpec.model_validate(data, context=FROM_FILE)
    except ValidationError as exc:
        raise TaskError(f"{origin}: {first_error(exc)}") from None
    return task, fixes


def research_log_task(obj: dict[str, Any], origin: str, default_id: str) -> TaskSpec:
    """A task in the research log's format: `id`, `prompt`, `reference`,
    `metadata: {module, tests}` (the Go package name and the test file's text)."""
    meta = obj["metadata"]
    tests = meta.get("tests")
    if not isinstance(tests, str) or not tests.strip():
        raise TaskError(f"{origin}: field 'metadata.tests' must be the test file's text")
    reference = obj.get("reference")
    # The package clause in the files wins over `module`, which may be a module path.
    package = None
    for src in (tests, reference if isinstance(reference, str) else ""):
        if name := package_of(src):
            package = name.removesuffix("_test")
            break
    if package is None:
        module = str(meta.get("module") or "sandbox")
        package = re.sub(r"\W", "_", module.rsplit("/", 1)[-1]) or "sandbox"
    data = {"id": obj.get("id"), "prompt": obj.get("prompt"), "reference": reference,
            "tests": tests, "package": package, "tags": ["research-log"]}
    if data["id"] is None:
        del data["id"]
    return task_from_dict(data, origin=Path(origin), default_id=default_id, base=Path("."))


# -- loaders -----------------------------------------------------------------------------

def _read_lines(path: Path) -> list[str]:
    """A JSONL file's lines: a regular file, gunzipped when `.gz`, capped before and after."""
    if not path.name.endswith(".gz"):
        return read_task_file(path, SUITE_FILE_MAX_BYTES).splitlines()
    data = read_task_bytes(path, SUITE_FILE_MAX_BYTES)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            text = fh.read(SUITE_FILE_MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise TaskError(f"{path}: not a readable gzip file: {exc}") from None
    if len(text) > SUITE_FILE_MAX_BYTES:
        raise TaskError(f"{path}: unpacks to more than {SUITE_FILE_MAX_BYTES} bytes")
    try:
        return text.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise TaskError(f"{path}: cannot read: {exc}") from None


def load_jsonl(path: Path, *, gocode: Path | None = None
               ) -> tuple[list[TaskSpec], dict[str, list[AppliedFix]], set[str]]:
    """Tasks from a JSONL file, one object per line, each in any supported format."""
    tasks: list[TaskSpec] = []
    fixes: dict[str, list[AppliedFix]] = {}
    formats: set[str] = set()
    stem = Path(path.name.removesuffix(".gz")).stem
    for n, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        origin = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{origin}: invalid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise TaskError(f"{origin}: nested too deeply to read") from None
        if not isinstance(obj, dict):
            raise TaskError(f"{origin}: expected a JSON object, got {type(obj).__name__}")
        fmt = detect_format(obj)
        formats.add(fmt)
        if fmt == "humaneval-x":
            task, applied = humaneval_x_task(obj, origin, gocode=gocode)
            if applied:
                fixes[task.id] = applied
        elif fmt == "research-log":
            task = research_log_task(obj, origin, default_id=f"{stem}-{n}")
        else:
            task = task_from_dict(obj, origin=Path(origin), default_id=f"{stem}-{n}",
                                  base=path.parent)
        tasks.append(task)
    return tasks, fixes, formats


def _load_json_file(path: Path) -> list[TaskSpec]:
    """A `.json` file: one task object, or a list of them."""
    data = parse_task_text(read_task_file(path, SUITE_FILE_MAX_BYTES), path)
    if not isinstance(data, list):
        return [load_task(path)]
    return [task_from_dict(obj, origin=Path(f"{path}[{i}]"), default_id=f"{path.stem}-{i}",
                           base=path.parent) for i, obj in enumerate(data)]


def _is_suite_file(p: Path) -> bool:
    return p.is_file() and p.name.endswith(TASK_SUFFIXES)


def _suite_files(root: Path) -> list[Path]:
    files = []
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        # Hidden and `_`-prefixed entries hold drafts and shared data, not tasks.
        if any(part.startswith((".", "_")) for part in rel.parts):
            continue
        if _is_suite_file(p):
            files.append(p)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def load_suite(path: str | Path, *, gocode: str | Path | None = None) -> TaskSuite:
    """Load a suite from a directory, a task file, or a JSONL file (see the module doc).

    `gocode` is the root of local Go sources for suites whose tests import testify
    (default: $GUILD_AGENT_GOCODE, else /usr/share/gocode/src). Task ids must be unique.
    """
    p = Path(path)
    root = gocode_root(gocode) if gocode else None
    if not p.exists():
        raise TaskError(f"{p}: no such suite (a directory, task file or JSONL file)")
    tasks: list[TaskSpec] = []
    fixes: dict[str, list[AppliedFix]] = {}
    formats: set[str] = set()
    where: dict[str, str] = {}
    files = _suite_files(p) if p.is_dir() else [p]
    if p.is_dir() and not files:
        raise TaskError(f"{p}: no task files (.yaml, .yml, .json, .jsonl) in the directory")
    for f in files:
        if f.name.endswith((".jsonl", ".jsonl.gz")):
            got, got_fixes, got_formats = load_jsonl(f, gocode=root)
            fixes.update(got_fixes)
            formats |= got_formats
        elif f.suffix == ".json":
            got = _load_json_file(f)
            formats.add("tasks")
        elif f.suffix in (".yaml", ".yml"):
            got = [load_task(f)]
            formats.add("tasks")
        else:
            raise TaskError(f"{f}: not a suite file (expected a directory, .yaml, .yml, "
                            ".json, .jsonl or .jsonl.gz)")
        for t in got:
            if t.id in where:
                raise TaskError(f"{f}: duplicate task id '{t.id}' (also in {where[t.id]})")
            where[t.id] = str(f)
            tasks.append(t)
    if not tasks:
        raise TaskError(f"{p}: the suite holds no tasks")
    name = Path(p.name.removesuffix(".gz")).stem if p.is_file() else p.name
    fmt = formats.pop() if len(formats) == 1 else "mixed"
    return TaskSuite(name=name, path=str(p), format=fmt, tasks=tasks, fixes=fixes)
