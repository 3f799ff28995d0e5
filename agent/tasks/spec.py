"""TaskSpec: what users write by hand to describe a Go task, and how it is loaded.

Task files come from people and suites from the internet, so loading checks everything a
task names or holds that later becomes a file, a go.mod line or a `go test` flag: a bad
task stops here with one line naming the file and field (exit 2), never later as a
traceback or as a failure blamed on the model. Paths a task names resolve inside the task
file's folder unless $GUILD_AGENT_TRUST_TASK_PATHS=1; every file read is a regular file
under a size cap (docs/bad-inputs.md, "Task files and suites").
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.golang.source import package_of
from tools.verdict import HELPER_PREFIX, SENTINEL_PREFIX
from tools.workspace import DEFAULT_GO_VERSION, Requirement

_IDENT_RE = re.compile(r"^[A-Za-z_]\w*$")

TRUST_PATHS_ENV = "GUILD_AGENT_TRUST_TASK_PATHS"
DEFAULT_GOCODE = Path("/usr/share/gocode/src")

# Caps on what a task may read or hold; far above any real task, low enough that a
# mistake (or /dev/zero's cousins) cannot exhaust memory or fill a prompt. The caps on
# held text apply to tasks read from files and suites (`FROM_FILE`), not to the tasks
# `fix` builds from a user's own package.
TASK_FILE_MAX_BYTES = 4 * 2**20  # a .yaml/.json task file
GO_FILE_MAX_BYTES = 2**20  # a Go file named by tests_file & co, or `check --solution`
GO_MOD_MAX_BYTES = 2**20  # a replace target's go.mod
SOURCE_MAX_CHARS = 2**20  # one Go text held in the task (tests, a file, the reference)
PROMPT_MAX_CHARS = 256 * 2**10
FILES_MAX = 100  # entries in one of files / support_files / reference_files
TEST_TIMEOUT_MAX = 3600.0  # seconds
NAME_MAX_BYTES = 1024  # a file name, all path elements together
NAME_PART_MAX_BYTES = 255  # one path element (the usual file-system limit)
NAME_MAX_DEPTH = 8
ID_MAX_CHARS = 200

# Files the harness writes itself; a task file of the same name would be skipped or
# overwritten without a word. (agent.tasks.harness.RESERVED; a test keeps the two in step.)
HARNESS_FILES = frozenset({"hidden_test.go", "visible_test.go"})

_GO_KEYWORDS = frozenset({
    "break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough",
    "for", "func", "go", "goto", "if", "import", "interface", "map", "package", "range",
    "return", "select", "struct", "switch", "type", "var"})
_GO_VERSION_RE = re.compile(r"^1\.(0|[1-9]\d{0,3})(\.(0|[1-9]\d{0,3})|(rc|beta)[1-9]\d?)?$")
_NAME_BAD_CHARS = frozenset('"*:<>?|`\'')  # as Go's module rules; not portable names
_MODULE_PART_RE = re.compile(r"^[A-Za-z0-9_~-]([A-Za-z0-9._~-]*[A-Za-z0-9_~-])?$")
_SEMVER_RE = re.compile(
    r"^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
_GO_MOD_MODULE_RE = re.compile(r'^\s*module\s+("([^"]*)"|`([^`]*)`|(\S+))', re.M)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class TaskError(ValueError):
    """A task file that cannot be used; the message is one line naming file and field."""


class UnsafeFileError(ValueError):
    """A path that is not a regular file within its size cap (the message names why)."""


def short(value: object, limit: int = 80) -> str:
    """`repr` of a user-given value, cut to one short line for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


# -- reading what a task names ----------------------------------------------------------

def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a FIFO, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is not a regular file"


def read_regular_file(path: str | Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, read without ever blocking.

    FIFOs, devices (/dev/zero), sockets and directories are refused from `stat` before
    any open; the open itself is non-blocking and checked again, so a file swapped for a
    FIFO in between cannot hang. Raises OSError (missing, unreadable) or UnsafeFileError.
    """
    try:
        st = os.stat(path)
    except ValueError as exc:  # an embedded NUL, a lone surrogate
        raise UnsafeFileError(f"unusable path: {exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(_kind(st.st_mode))
    if st.st_size > max_bytes:
        raise UnsafeFileError(f"too large: {st.st_size} bytes (limit {max_bytes})")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(
        os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFileError(_kind(os.fstat(fd).st_mode))
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:
            chunk = os.read(fd, min(1 << 16, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > max_bytes:  # it grew after the stat
        raise UnsafeFileError(f"too large: over {max_bytes} bytes")
    return b"".join(chunks)


def read_text_file(path: str | Path, max_bytes: int) -> str:
    """`read_regular_file` decoded as strict UTF-8 (UnicodeDecodeError otherwise)."""
    return read_regular_file(path, max_bytes).decode("utf-8")


def trust_task_paths() -> bool:
    """True when the user opted out of confining task paths to the task's folder."""
    return os.environ.get(TRUST_PATHS_ENV, "").strip() == "1"


def gocode_root(explicit: str | Path | None = None) -> Path:
    """Where Debian-style Go sources live: the argument, $GUILD_AGENT_GOCODE, or Debian's."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("GUILD_AGENT_GOCODE")
    return Path(env).expanduser() if env else DEFAULT_GOCODE


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_task_path(raw: str, base: Path, *, also: tuple[Path, ...] = ()) -> Path:
    """A path named in a task file, resolved (links included) against its folder `base`.

    Unless the user opted out, it must not be absolute and must end up inside `base` (or
    one of `also`, each a known source tree that may be named by its absolute path).
    Raises UnsafeFileError with the reason.
    """
    if "\0" in raw:
        raise UnsafeFileError("the path holds a NUL byte")
    if not raw.strip():
        raise UnsafeFileError("the path is empty")
    try:
        os.fsencode(raw)
    except UnicodeEncodeError:
        raise UnsafeFileError("the path is not valid text") from None
    p = Path(raw).expanduser()
    real = Path(os.path.realpath(p if p.is_absolute() else base / p))
    if trust_task_paths():
        return real
    roots = [Path(os.path.realpath(base))] + [Path(os.path.realpath(r)) for r in also]
    if any(_within(real, r) for r in roots[1:]):
        return real
    hint = f"set {TRUST_PATHS_ENV}=1 to allow paths outside the task's folder"
    if p.is_absolute():
        raise UnsafeFileError(f"absolute paths are refused ({hint})")
    if not _within(real, roots[0]):
        raise UnsafeFileError(f"the path leads outside the task's folder ({hint})")
    return real


def _read_named_go_file(raw: str, base: Path, field: str, origin: Path) -> str:
    where = f"{origin}: field '{field}'"
    try:
        return read_text_file(resolve_task_path(raw, base), GO_FILE_MAX_BYTES)
    except FileNotFoundError:
        raise TaskError(f"{where}: file not found: {short(raw)}") from None
    except UnsafeFileError as exc:
        raise TaskError(f"{where}: {short(raw)}: {exc}") from None
    except UnicodeDecodeError:
        raise TaskError(f"{where}: {short(raw)}: not UTF-8 text") from None
    except OSError as exc:
        raise TaskError(f"{where}: cannot read {short(raw)}: {exc.strerror or exc}") from None


def _go_mod_module(text: str) -> str | None:
    m = _GO_MOD_MODULE_RE.search(text)
    return next((g for g in m.groups()[1:] if g is not None), None) if m else None


def _resolve_replace(raw: str, module: object, base: Path, field: str, origin: Path) -> str:
    """A `replace` directory, checked: a Go module declaring `module`, inside the task's
    folder, or a directory of the local Go sources tree (which may lack go.mod)."""
    where = f"{origin}: field '{field}'"
    gocode = gocode_root()
    try:
        real = resolve_task_path(raw, base, also=(gocode,))
        st = os.stat(real)
    except UnsafeFileError as exc:
        raise TaskError(f"{where}: {short(raw)}: {exc}") from None
    except FileNotFoundError:
        raise TaskError(f"{where}: replace directory not found (or a dangling link): "
                        f"{short(raw)}") from None
    except OSError as exc:
        raise TaskError(f"{where}: cannot use {short(raw)}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise TaskError(f"{where}: {short(raw)} is not a directory")
    go_mod = real / "go.mod"
    try:
        text = read_text_file(go_mod, GO_MOD_MAX_BYTES)
    except FileNotFoundError:
        if _within(real, Path(os.path.realpath(gocode))):
            return str(real)  # Debian ships some sources without go.mod; the workspace adds one
        raise TaskError(f"{where}: {short(raw)} holds no go.mod (a replace target must be "
                        "a Go module)") from None
    except (OSError, UnsafeFileError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise TaskError(f"{where}: cannot read {short(raw)}/go.mod: {why}") from None
    declared = _go_mod_module(text)
    if declared is None:
        raise TaskError(f"{where}: {short(raw)}/go.mod has no module line")
    if isinstance(module, str) and declared != module:
        raise TaskError(f"{where}: {short(raw)}/go.mod declares module {short(declared)}, "
                        f"not {short(module)}")
    return str(real)


# -- the task ---------------------------------------------------------------------------

def check_go_file_name(name: str) -> str | None:
    """Why `name` cannot be a Go file a task puts in its module, or None if it can.

    Relative, '/'-separated, every element a plain name Go does not ignore, ending in
    `.go`, and not a file the workspace or harness writes itself.
    """
    if not name:
        return "is empty"
    if _CONTROL_RE.search(name):
        return "holds a control character"
    if "\\" in name:
        return "holds a backslash (use '/')"
    if name.startswith("/"):
        return "is an absolute path"
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
        return f"is longer than {NAME_MAX_BYTES} bytes"
    parts = name.split("/")
    if len(parts) > NAME_MAX_DEPTH:
        return f"is nested more than {NAME_MAX_DEPTH} folders deep"
    for part in parts:
        if part in ("", ".", ".."):
            return "must be a plain relative path inside the module (no '', '.' or '..')"
        if len(part.encode("utf-8", "surrogatepass")) > NAME_PART_MAX_BYTES:
            return f"has an element longer than {NAME_PART_MAX_BYTES} bytes"
        if part.startswith((".", "_")):
            return "names a hidden file or folder (Go ignores names starting with '.' or '_')"
        if bad := sorted(_NAME_BAD_CHARS & set(part)):
            return f"holds the character {bad[0]!r}"
    if any(p in ("testdata", "vendor") for p in parts[:-1]):
        return "lies in a testdata or vendor folder, which Go does not build"
    if parts[-1] in ("go.mod", "go.sum", "go.work"):
        return "is managed by the workspace"
    if not parts[-1].endswith(".go"):
        return "is not a .go file"
    if (name in HARNESS_FILES or name.rsplit("/", 1)[-1].startswith(SENTINEL_PREFIX)
            or name.startswith(HELPER_PREFIX)):
        return "is reserved for the harness's own files"
    return None


FROM_FILE = {"from_file": True}  # validation context: the task came from a file or suite


def _from_file(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("from_file"))


def _check_go_text(info: ValidationInfo, text: str, name: str | None = None) -> None:
    what = f"file {short(name)}" if name else "the Go text"
    if "\0" in text:
        raise ValueError(f"{what} holds a NUL byte, which Go source cannot")
    if _from_file(info) and len(text) > SOURCE_MAX_CHARS:
        raise ValueError(f"{what} is longer than {SOURCE_MAX_CHARS} characters")


class Budget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rounds: int | None = Field(default=None, ge=1)
    tokens: int | None = Field(default=None, ge=1)
    seconds: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class TaskRequirement(Requirement):
    """A `go_mod.require` entry, checked before it becomes go.mod lines."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("module")
    @classmethod
    def _module_path(cls, v: str) -> str:
        parts = v.split("/")
        if not v or len(v) > 500 or any(
                not _MODULE_PART_RE.match(p) or ".." in p for p in parts):
            raise ValueError(f"{short(v)} is not a Go module path")
        return v

    @model_validator(mode="after")
    def _version(self) -> TaskRequirement:
        m = _SEMVER_RE.match(self.version)
        if not m:
            raise ValueError(f"version {short(self.version)} is not a Go module version "
                             "(vMAJOR.MINOR.PATCH)")
        major = int(m.group(1))
        if major >= 2 and not self.version.endswith("+incompatible") and not (
                self.module.endswith((f"/v{major}", f".v{major}"))):
            raise ValueError(f"version {self.version} needs a module path ending in "
                             f"/v{major}")
        return self


class GoModExtras(BaseModel):
    model_config = ConfigDict(extra="forbid")

    go: str = DEFAULT_GO_VERSION
    require: list[TaskRequirement] = Field(default_factory=list)

    @field_validator("go")
    @classmethod
    def _go_version(cls, v: str) -> str:
        if not _GO_VERSION_RE.match(v):
            raise ValueError(f"{short(v)} is not a Go version (like 1.24 or 1.22.3)")
        return v

    @field_validator("require")
    @classmethod
    def _unique(cls, v: list[TaskRequirement]) -> list[TaskRequirement]:
        seen: set[str] = set()
        for r in v:
            if r.module in seen:
                raise ValueError(f"module {short(r.module)} is required twice")
            seen.add(r.module)
        return v


class TaskSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
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
    test_timeout: float = Field(default=10.0, gt=0, le=TEST_TIMEOUT_MAX, allow_inf_nan=False)
    tags: list[str] = Field(default_factory=list)  # e.g. tier, topic

    @field_validator("id")
    @classmethod
    def _id_text(cls, v: str, info: ValidationInfo) -> str:
        if _CONTROL_RE.search(v):
            raise ValueError("the id holds a control character")
        if _from_file(info) and len(v) > ID_MAX_CHARS:
            raise ValueError(f"the id is longer than {ID_MAX_CHARS} characters")
        return v

    @field_validator("prompt")
    @classmethod
    def _prompt_size(cls, v: str, info: ValidationInfo) -> str:
        if _from_file(info) and len(v) > PROMPT_MAX_CHARS:
            raise ValueError(f"longer than {PROMPT_MAX_CHARS} characters")
        return v

    @field_validator("package")
    @classmethod
    def _package_ident(cls, v: str) -> str:
        if not _IDENT_RE.match(v) or v == "_" or v in _GO_KEYWORDS:
            raise ValueError(f"{short(v)} is not a Go package name")
        return v

    @field_validator("tests", "visible_tests", "reference")
    @classmethod
    def _go_text(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            _check_go_text(info, v)
        return v

    @field_validator("files", "support_files", "reference_files")
    @classmethod
    def _go_files(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if _from_file(info) and len(v) > FILES_MAX:
            raise ValueError(f"more than {FILES_MAX} files")
        for name, text in v.items():
            if problem := check_go_file_name(name):
                raise ValueError(f"file name {short(name)} {problem}")
            _check_go_text(info, text, name)
        return v

    @field_validator("test_timeout", mode="before")
    @classmethod
    def _timeout_not_bool(cls, v: Any) -> Any:
        if isinstance(v, bool) or (isinstance(v, float) and math.isnan(v)):
            raise ValueError("expected a number of seconds")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        fixed = set(self.support_files)
        for field in ("files", "reference_files"):
            if clash := fixed & set(getattr(self, field)):
                raise ValueError(f"{short(sorted(clash)[0])} is in both 'support_files' "
                                 f"and '{field}'")
        return self

    # -- derived views -------------------------------------------------------
    def with_package(self, source: str) -> str:
        """A Go file's text with a package clause (task authors may leave it out)."""
        if package_of(source) is not None:
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


def _field_path(loc: tuple) -> str:
    # Dict keys are user text: keep the line single and short.
    parts = [p if isinstance(p, str) and p.isprintable() and len(p) <= 60 else short(p, 40)
             for p in loc]
    return ".".join(str(p) for p in parts) or "(top level)"


def first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = _field_path(err["loc"])
    kind = err["type"]
    if kind == "missing":
        return f"field '{field}' is required"
    if kind == "extra_forbidden":
        return f"unknown field '{field}'"
    msg = str(err["msg"]).removeprefix("Value error, ")
    if not err["loc"]:  # a check across fields names them itself
        return msg
    return f"field '{field}': {msg}"


_FILE_FIELDS = {"tests_file": "tests", "visible_tests_file": "visible_tests",
                "reference_file": "reference"}


def _resolve_requires(data: dict[str, Any], base: Path, origin: Path) -> None:
    """Replace each `go_mod.require[].replace` by its checked, resolved directory."""
    go_mod = data.get("go_mod")
    if not isinstance(go_mod, dict) or not isinstance(go_mod.get("require"), list):
        return
    go_mod = data["go_mod"] = dict(go_mod)
    require = go_mod["require"] = list(go_mod["require"])
    for i, req in enumerate(require):
        if isinstance(req, dict) and isinstance(req.get("replace"), str):
            req = require[i] = dict(req)
            req["replace"] = _resolve_replace(req["replace"], req.get("module"), base,
                                              f"go_mod.require.{i}.replace", origin)


def task_from_dict(data: Any, *, origin: Path, default_id: str, base: Path) -> TaskSpec:
    """Validate one task object; `*_file` keys and `replace` directories are read
    relative to `base` (and confined to it unless the user opted out)."""
    if not isinstance(data, dict):
        raise TaskError(f"{origin}: expected a mapping of task fields, got {type(data).__name__}")
    data = dict(data)
    for key, target in _FILE_FIELDS.items():
        if key in data:
            if target in data:
                raise TaskError(f"{origin}: give either '{target}' or '{key}', not both")
            if not isinstance(data[key], str):
                raise TaskError(f"{origin}: field '{key}': expected a path")
            data[target] = _read_named_go_file(data.pop(key), base, key, origin)
    _resolve_requires(data, base, origin)
    data.setdefault("id", default_id)
    if isinstance(data.get("id"), int) and not isinstance(data["id"], bool):
        data["id"] = str(data["id"])
    try:
        return TaskSpec.model_validate(data, context=FROM_FILE)
    except ValidationError as exc:
        raise TaskError(f"{origin}: {first_error(exc)}") from None
    except RecursionError:
        raise TaskError(f"{origin}: the task's values are nested too deeply") from None


def parse_task_text(text: str, path: Path) -> Any:
    """A task file's text as data (JSON for `.json`, else YAML); TaskError on bad syntax."""
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(getattr(exc, "problem", None) or "invalid YAML").split())
        raise TaskError(f"{path}: YAML syntax error{where}: {problem}") from None
    except json.JSONDecodeError as exc:
        raise TaskError(f"{path}: JSON syntax error at line {exc.lineno}: {exc.msg}") from None
    except RecursionError:
        raise TaskError(f"{path}: nested too deeply to read") from None


def read_task_bytes(p: Path, max_bytes: int = TASK_FILE_MAX_BYTES) -> bytes:
    """A task or suite file's bytes: a regular file under the cap, else TaskError."""
    try:
        return read_regular_file(p, max_bytes)
    except FileNotFoundError:
        raise TaskError(f"{p}: no such task file") from None
    except UnsafeFileError as exc:
        if str(exc) == "is a directory":
            raise TaskError(f"{p}: is a directory, expected a task file "
                            "(.yaml, .yml or .json)") from None
        raise TaskError(f"{p}: {exc}") from None
    except OSError as exc:
        raise TaskError(f"{p}: cannot read: {exc.strerror or exc}") from None


def read_task_file(p: Path, max_bytes: int = TASK_FILE_MAX_BYTES) -> str:
    """`read_task_bytes` as UTF-8 text."""
    try:
        return read_task_bytes(p, max_bytes).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaskError(f"{p}: cannot read: {exc}") from None


def load_task(path: str | Path) -> TaskSpec:
    """Load a YAML or JSON task file. Raises TaskError with one clear line."""
    p = Path(path)
    data = parse_task_text(read_task_file(p), p)
    if data is None:
        raise TaskError(f"{p}: the file is empty")
    return task_from_dict(data, origin=p, default_id=p.stem, base=p.parent)
