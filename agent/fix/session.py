"""Fixing a user's own Go files: find the package, work on a scratch copy, apply safely.

The user's tree is only ever read until they accept a change; then `apply_changes` writes
it atomically after checking nothing changed on disk meanwhile, and keeps a backup that
`undo` restores. Those two are the only writers of the user's tree (`_write_user_file`
refuses any other caller). Everything in between happens in a scratch copy holding only
the module's build files (agent.fix.scratch).

The model sees each file as LF text without a byte-order mark; a file's CRLF endings,
BOM and missing final newline are put back when it is written (`Target.to_disk`).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import hashlib
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from agent.atomic import write_bytes_atomic, write_text_atomic
from agent.fix.goenv import UserGoEnv, sandboxed, with_wall, with_workspace
from agent.fix.scratch import CopyError, ModuleCopy
from agent.golang.edits import (
    BLOCKS_OVER_LINES,
    EditMode,
    EditRules,
    choose_modes,
    parse_edit_answer,
)
from agent.golang.extract import Extraction, FormatError
from agent.golang.fixes import FIX_NAMES
from agent.golang.source import package_of
from agent.loop.checker import Suite
from agent.loop.problem import Problem
from agent.loop.prompts import render
from agent.models.base import Message
from tools.diagnostics import CheckResult, Diagnostic, Kind
from tools.gofmt import gofmt_source
from tools.paths import cache_dir
from tools.runner import LOG_CAP, CheckOptions, GoRunner, test_names
from tools.workspace import Workspace, read_nofollow, write_nofollow

BACKUPS_ENV = "GUILD_AGENT_FIX_BACKUPS"  # tests point backups elsewhere, keeping the GOCACHE
MAX_TARGET_BYTES = 8 * 1024 * 1024  # far past any model's context; refuses /dev/zero-likes
COMMAND_OUTPUT_CHARS = 4_000  # of a --test-cmd/--lint-cmd's output, the tail the model sees
SUPPORT_CHARS = 16_000  # how much of the package's other files the model is shown
_MODULE_RE = re.compile(r"^\s*module\s+\"?([^\s\"]+)\"?", re.M)
# A `replace` to a folder: relative (`./x`, `../x`) or absolute (`/x`).
_DIR_REPLACE_RE = re.compile(r"(=>\s*)((?:\.{1,2}|/)[^\s]*)(\s*(?:$|//))", re.M)
REPLACE_DIR = "_guild_replace"  # where the copy keeps replaced modules (`_`: Go skips it)
_APPLYING: contextvars.ContextVar[bool] = contextvars.ContextVar("fix_applying", default=False)


class FixError(ValueError):
    """Bad input for `fix` (a path, a package, a backup): one line, exit 2."""


class StaleFileError(FixError):
    """A file changed on disk after it was read: applying would lose someone's edit."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Target(BaseModel):
    """One file the user named: what it held when read, so a later write can be refused."""

    path: Path  # absolute, as named: a link stays a link
    real: Path  # the file read and written: `path` with every link resolved
    name: str  # relative to the package directory (the name the model sees)
    text: str  # as the model sees it: no BOM, LF line endings
    raw: bytes = Field(repr=False)  # the exact bytes read, for backups and rollback
    sha256: str
    mode: int
    crlf: bool = False  # every line ended in CRLF
    bom: bool = False  # started with a UTF-8 byte-order mark
    final_newline: bool = True

    def conform(self, text: str) -> str:
        """A candidate with the file's own end-of-file convention (final newline or not)."""
        text = text.removeprefix("\ufeff")
        if not self.final_newline:
            return text.rstrip("\n")
        return text + "\n" if text and not text.endswith("\n") else text

    def to_disk(self, text: str) -> str:
        """`text` as it is written to the file: the BOM and CRLF endings put back."""
        text = self.conform(text)
        if self.crlf:
            text = re.sub(r"\r?\n", "\r\n", text)
        return ("\ufeff" if self.bom else "") + text

    @property
    def kept(self) -> list[str]:
        """What the diff does not show but the write keeps, for one line under it."""
        return [k for k, on in (("CRLF line endings", self.crlf), ("the BOM", self.bom),
                                ("no final newline", not self.final_newline)) if on]


class FixSite(BaseModel):
    """Where the named files live: module, package directory and repository."""

    targets: list[Target]
    package: str  # the Go package name
    package_dir: Path
    module_root: Path | None  # None: no go.mod above, a temporary module is made
    package_rel: str = "."  # package directory relative to the module root
    git_root: Path | None = None
    dry_run: bool = False  # set by `fix --dry-run`: apply_changes refuses to run at all

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.targets]

    def pattern(self) -> str:
        """The package as a `go test` argument from the module root."""
        return "." if self.package_rel == "." else "./" + self.package_rel


def find_module_root(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding a go.mod."""
    for d in (start, *start.parents):
        if (d / "go.mod").is_file():
            return d
    return None


def git_root(path: Path) -> Path | None:
    """The enclosing git work tree, if git is installed and there is one."""
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    top = out.stdout.strip()
    return Path(top) if out.returncode == 0 and top else None


def read_user_file(path: Path, *, limit: int = MAX_TARGET_BYTES) -> tuple[bytes, int]:
    """A user's regular file's bytes and mode; a FIFO or device is refused, never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise FixError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FixError(f"{path}: not a regular file (a FIFO, socket or device); name a "
                           ".go source file")
        if st.st_size > limit:
            raise FixError(f"{path}: {st.st_size} bytes is too large to fix (at most {limit})")
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            if sum(map(len, chunks)) > limit:
                raise FixError(f"{path}: too large to fix (at most {limit} bytes)")
        return b"".join(chunks), stat.S_IMODE(st.st_mode)
    except OSError as exc:
        raise FixError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def decode_source(data: bytes, path: Path) -> tuple[str, bool, bool]:
    """(text for the model, crlf, bom): a BOM is stripped, consistent CRLF becomes LF.

    Mixed line endings are left as they are: there is no one convention to restore.
    """
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data[3 if bom else 0:].decode("utf-8")
    except UnicodeDecodeError:
        raise FixError(f"{path}: not UTF-8 text; Go source must be UTF-8") from None
    crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
    return (text.replace("\r\n", "\n") if crlf else text), crlf, bom


def read_target(path: Path, package_dir: Path, real: Path | None = None) -> Target:
    real = real or Path(os.path.realpath(path))
    data, mode = read_user_file(real)
    text, crlf, bom = decode_source(data, path)
    return Target(path=path, real=real, name=path.name, text=text, raw=data,
                  sha256=sha256_bytes(data), mode=mode, crlf=crlf, bom=bom,
                  final_newline=not text or text.endswith("\n"))


def locate(paths: list[Path]) -> FixSite:
    """Check the named files and find their package and module. Raises FixError.

    A named link stays a link: its package is the folder the link is in, and a change is
    written to the file it points at.
    """
    if not paths:
        raise FixError("name at least one .go file to fix")
    named: dict[Path, Path] = {}  # as named (absolute) -> the real file
    for p in paths:
        ap = Path(os.path.abspath(p.expanduser()))
        if not os.path.lexists(ap):
            raise FixError(f"{p}: no such file")
        if not ap.exists():
            raise FixError(f"{p}: a link to a file that does not exist")
        if ap.is_dir():
            raise FixError(f"{p}: is a directory; name the .go files to fix")
        if ap.suffix != ".go":
            raise FixError(f"{p}: not a .go file")
        if ap.name.startswith((".", "_")):
            raise FixError(f"{p}: Go ignores files whose names start with '.' or '_'")
        real = Path(os.path.realpath(ap))
        for other, other_real in named.items():
            if other_real == real and other != ap:
                raise FixError(f"{p} and {other} are the same file; name it once")
        named[ap] = real
    dirs = {Path(os.path.realpath(p.parent)) for p in named}
    if len(dirs) > 1:
        raise FixError("the files must be in one package directory; got "
                       + ", ".join(sorted(str(d) for d in dirs)))
    package_dir = dirs.pop()
    targets = [read_target(p, package_dir, real) for p, real in named.items()]
    names = {t.name: package_of(t.text) for t in targets}
    for name, pkg in names.items():
        if pkg is None:
            raise FixError(f"{package_dir / name}: no `package` clause; is it a Go file?")
    # An external test package (`foo_test`) lives beside `foo`: the package is `foo`.
    pkgs = {p.removesuffix("_test") for p in names.values() if p}
    if len(pkgs) > 1:
        raise FixError("the files belong to different packages: " + ", ".join(sorted(pkgs)))
    non_test = [p for n, p in names.items() if p and not n.endswith("_test.go")]
    package = non_test[0] if non_test else pkgs.pop()
    root = find_module_root(package_dir)
    rel = package_dir.relative_to(root).as_posix() if root else "."
    if rel != "." and any(part.startswith(".") for part in rel.split("/")):
        raise FixError(f"{package_dir}: inside a folder whose name starts with '.', which Go "
                       "does not build")
    return FixSite(targets=targets, package=package, package_dir=package_dir,
                   module_root=root, package_rel=rel, git_root=git_root(package_dir))


def unwritable(site: FixSite) -> str | None:
    """Why applying a change would fail (a read-only file or folder), before any round."""
    for t in site.targets:
        try:
            fst = os.stat(t.real)
            dst = os.stat(t.real.parent)
        except OSError as exc:
            return f"{t.path}: {exc.strerror or exc}"
        if not fst.st_mode & 0o222 or not os.access(t.real, os.W_OK):
            return (f"{t.path}: the file is read-only; make it writable to let fix change it "
                    "(or use --dry-run)")
        if not dst.st_mode & 0o222 or not os.access(t.real.parent, os.W_OK | os.X_OK):
            return (f"{t.real.parent}: the folder is read-only; fix writes a new file beside "
                    f"{t.real.name} and renames it over, so it needs to write there (or use "
                    "--dry-run)")
    return None


# -- the scratch copy ----------------------------------------------------------------------

def _copy_replaces(go_mod: str, root: Path, copier: ModuleCopy) -> str:
    """go.mod with each `replace` to a folder copied into the scratch copy and pointed there.

    The replaced module goes through the same filter as the main one (no dot-entries, no
    links out, the same caps), so the sandbox never sees the folder itself.
    """
    count = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal count
        target = Path(os.path.realpath(root / m.group(2)))
        if not (target / "go.mod").is_file():
            raise CopyError(f"go.mod: replace => {m.group(2)}: not a module folder (no go.mod "
                            "there)")
        into = PurePosixPath(REPLACE_DIR, str(count))
        count += 1
        copier.module(target, into)
        return f"{m.group(1)}./{into}{m.group(3)}"

    return _DIR_REPLACE_RE.sub(sub, go_mod)


def scratch_copy(site: FixSite, skipped: list[str] | None = None) -> Workspace:
    """A workspace holding the module's build files (or the lone package and a temp go.mod).

    Copied into the harness's own copy (`ws.base`), which runs never see directly; the
    named files are written as the model sees them (LF, no BOM), whatever links led there.
    What the filter left out is added to `skipped`.
    """
    ws = Workspace(module="fixsandbox", prefix="guild-fix-")
    try:
        copier = ModuleCopy(ws.base)
        if site.module_root is None:
            copier.package(site.package_dir)  # under the workspace's temp go.mod
        else:
            (ws.base / "go.mod").unlink()
            copier.module(site.module_root)
            go_mod_path = ws.base / "go.mod"
            if not go_mod_path.is_file():
                raise CopyError(f"{site.module_root / 'go.mod'}: cannot be copied (a link "
                                "out of the module?)")
            go_mod = go_mod_path.read_text(errors="replace")
            if not (site.module_root / "vendor" / "modules.txt").is_file():
                # Vendored builds read no replace folders (and check go.mod against
                # vendor/modules.txt): leave go.mod alone there.
                fixed = _copy_replaces(with_workspace(go_mod, site.module_root),
                                       site.module_root, copier)
                if fixed != go_mod:
                    go_mod_path.write_text(fixed)
        prefix = "" if site.package_rel == "." else site.package_rel + "/"
        for t in site.targets:
            write_nofollow(ws.base, PurePosixPath(prefix + t.name), t.text)
        if skipped is not None:
            skipped.extend(dict.fromkeys(copier.skipped))  # a folder met twice: listed once
    except CopyError as exc:
        ws.cleanup()
        raise FixError(str(exc)) from None
    except BaseException:
        ws.cleanup()
        raise
    return ws


class PackageChecker:
    """The loop's Checker for `fix`: writes candidates into the copy, tests that package.

    Build, full `go vet` and the package's own tests (filtered by `run`) must be green.
    Candidates go into the workspace's own copy (`ws.base`), which no run can see or
    change; every run gets a fresh tree built from it. The workspace outlives one loop run
    (the user can ask for more rounds), so `close` is a no-op and the session removes it.
    """

    def __init__(self, ws: Workspace, site: FixSite, *, run: str | None = None,
                 test_timeout: float = 60.0, race: bool = False,
                 runner: GoRunner | None = None, goenv: UserGoEnv | None = None,
                 test_cmd: str | None = None, lint_cmd: str | None = None) -> None:
        self.ws = ws
        self.site = site
        self.run = run
        self.race = race
        self.test_timeout = test_timeout
        self.runner = runner or GoRunner()
        self.goenv = goenv or UserGoEnv()
        self.test_cmd = test_cmd
        self.lint_cmd = lint_cmd
        self.pkg_dir = ws.base if site.package_rel == "." else ws.base / site.package_rel
        self.prefix = "" if site.package_rel == "." else site.package_rel + "/"
        self.last: tuple[dict[str, str], CheckResult] | None = None  # saves a re-run

    def expected_tests(self, run: str | None) -> list[str]:
        names: list[str] = []
        for p in sorted(self.pkg_dir.glob("*_test.go")):
            if p.is_file() and not p.is_symlink():
                names += test_names(read_nofollow(p).decode(errors="replace"))
        if run:
            # Go's -run matches the top-level name against the pattern's first part.
            first = run.split("/")[0]
            try:
                rx = re.compile(first)
            except re.error:
                return []
            names = [n for n in names if rx.search(n)]
        return names

    def check(self, solution: dict[str, str], suite: Suite = Suite.all, *,
              run: str | None = None, cover: bool = False) -> CheckResult:
        for name, content in solution.items():
            if name in self.site.names:  # anything else stays as the user has it
                self.ws.write(self.prefix + name, content)
        run = run or self.run
        if self.test_cmd:
            result = self._command(self.test_cmd, "--test-cmd", Kind.test_failure)
        else:
            opts = CheckOptions(test_timeout=self.test_timeout, run=run, full_vet=not cover,
                                cover=cover,
                                race=self.race,
                                limits=self.runner.options.limits,
                                build_allowance=self.runner.options.build_allowance,
                                env=tuple(self.goenv.env().items()),
                                readable=tuple(self.goenv.readable()),
                                hidden=tuple(self.goenv.hidden()))
            result = self.runner.check(self.ws, expected_tests=self.expected_tests(run),
                                       options=opts, pkg=self.site.pattern())
        if self.lint_cmd:
            lint = self._command(self.lint_cmd, "--lint-cmd", Kind.vet)
            if not lint.passed:
                result.passed = False
                result.diagnostics += lint.diagnostics
                result.log = (result.log + "\n" + lint.log)[-LOG_CAP:]
        if self.site.package_rel != ".":
            # Name files as the model knows them: relative to the package directory.
            prefix = self.site.package_rel + "/"
            result.diagnostics = [
                d.model_copy(update={"file": d.file.removeprefix(prefix)})
                if d.file else d for d in result.diagnostics]
        if run == self.run:
            self.last = ({n: c for n, c in solution.items() if n in self.site.names}, result)
        return result

    def _command(self, cmd: str, flag: str, kind: Kind) -> CheckResult:
        """The user's own command in the sandbox on a fresh copy: its exit status is the
        verdict, the tail of its output the feedback."""
        self.ws.prepare()
        limits = with_wall(self.runner.options.limits,
                           self.test_timeout + self.runner.options.build_allowance)
        proc = sandboxed(self.ws, [cmd], self.goenv, limits=limits, shell=True)
        out = proc.output.decode(errors="replace")
        tail = out[-COMMAND_OUTPUT_CHARS:]
        cut = "…(earlier output cut)\n" if len(out) > len(tail) else ""
        if proc.exit_code == 0 and not proc.timed_out:
            return CheckResult(passed=True, log=tail, seconds=proc.seconds)
        how = ("timed out" if proc.timed_out else f"exited with status {proc.exit_code}")
        return CheckResult(passed=False, log=tail, seconds=proc.seconds, diagnostics=[
            Diagnostic(kind=kind, message=f"{flag} `{cmd}` {how}:\n{cut}{tail.strip()}")])

    def verdict(self, files: dict[str, str]) -> CheckResult:
        """The full check of `files`, reusing the last run when it was of exactly these."""
        if self.last is not None and self.last[0] == files:
            return self.last[1]
        return self.check(files)

    def close(self) -> None:
        """Kept for the Checker protocol: the session owns the workspace."""


# -- the session: task, parser, checker --------------------------------------------------

class FixRequest(BaseModel):
    instruction: str | None = None
    run: str | None = None
    block_lines: int = Field(default=BLOCKS_OVER_LINES, ge=1)
    test_timeout: float = Field(default=60.0, gt=0)
    race: bool = False  # go test -race (needs cgo and a C compiler)
    test_cmd: str | None = None  # the user's own test command, in place of go test
    lint_cmd: str | None = None  # and linter, which must pass too
    # Test files in full in the prompt. Off: small models answer a fix request by copying
    # the test file they are shown (the 0.5B did, even with the tests in a text block or
    # placed before the code); the feedback quotes each failing test's lines instead.
    show_tests: bool = False
    goenv: UserGoEnv = Field(default_factory=UserGoEnv)


def _within_budget(files: dict[str, str]) -> dict[str, str]:
    """Files in order, tests first, skipping any that would pass SUPPORT_CHARS."""
    shown: dict[str, str] = {}
    used = 0
    for n in sorted(files, key=lambda n: (not n.endswith("_test.go"), n)):
        if used + len(files[n]) > SUPPORT_CHARS:
            continue
        shown[n] = files[n]
        used += len(files[n])
    return shown


class FixSession:
    """One `fix` invocation's scratch copy, edit modes and the task the loop is given."""

    def __init__(self, site: FixSite, request: FixRequest) -> None:
        self.site = site
        self.request = request
        self.original = {t.name: t.text for t in site.targets}
        self.modes = choose_modes(self.original, request.block_lines)
        self.skipped: list[str] = []  # what the scratch copy left out of the module
        self.ws = scratch_copy(site, self.skipped)
        self.checker = PackageChecker(self.ws, site, run=request.run,
                                      test_timeout=request.test_timeout, race=request.race,
                                      goenv=request.goenv, test_cmd=request.test_cmd,
                                      lint_cmd=request.lint_cmd)
        self.rules = EditRules(package=site.package, editable=site.names,
                               protected=sorted(set(self._package_files()) - set(site.names)))

    def _package_files(self) -> dict[str, str]:
        # Shown to the model as the named files are: LF endings, no BOM.
        return {p.name: read_nofollow(p).decode(errors="replace").removeprefix("\ufeff")
                .replace("\r\n", "\n")
                for p in sorted(self.checker.pkg_dir.glob("*.go"))
                if p.is_file() and not p.is_symlink()}

    def loop_fixes(self) -> list[str]:
        """The loop's deterministic fixes; no gofmt when the user's file is not gofmt-clean.

        Reformatting a file its author keeps unformatted would bury the fix in the diff.
        `_ = x` silences the compiler, which is fine for a benchmark answer but not a
        repair to hand a person: their unused variable is the model's to resolve.
        """
        unformatted = False
        for text in self.original.values():
            fmt = gofmt_source(text)
            unformatted |= fmt is not None and fmt != text
        return [f for f in FIX_NAMES
                if f != "unused-vars" and not (f == "gofmt" and unformatted)]

    def initial_check(self) -> CheckResult:
        return self.checker.check(self.original)

    def context_files(self) -> tuple[dict[str, str], dict[str, str]]:
        """The package's other files the model is shown (tests only with show_tests), and
        its tests for the feedback to quote; both within a budget, from one read."""
        others = {n: c for n, c in self._package_files().items() if n not in self.site.names}
        tests = {n: c for n, c in others.items() if n.endswith("_test.go")}
        shown = others if self.request.show_tests else {
            n: c for n, c in others.items() if n not in tests}
        return _within_budget(shown), _within_budget(tests)

    def problem(self, files: dict[str, str], *, feedback: str = "", note: str | None = None,
                given: CheckResult | None = None) -> Problem:
        """The loop's problem: the files as they stand now, the goal, and how to edit them.

        No tests are named: the package's own run in place, in `PackageChecker`. `given`
        is the check of `files`, which the loop searches before it asks the model; not
        with a note, which the user writes to have the model try again. An instruction
        is judged by the tests either way: one asking for code not yet written does not
        build, and code that does not build is not searched.
        """
        blocks = [n for n, m in self.modes.items() if m is EditMode.blocks]
        goal = render("fix_task", instruction=self.request.instruction, note=note,
                      editable=self.site.names, feedback=feedback, blocks=blocks,
                      run=self.request.run, test_cmd=self.request.test_cmd,
                      lint_cmd=self.request.lint_cmd)
        support, tests = self.context_files()
        package = self.site.package
        multi = len(files) > 1
        messages = [
            Message(role="system", content=render("system", package=package,
                                                  multi_file=multi)),
            Message(role="user", content=render(
                "task", package=package, prompt=goal, files=files, support_files=support,
                visible_tests=None)),
        ]
        hint = (f"Reply with search/replace blocks for {', '.join(blocks)} as shown above"
                + (", and the complete source of any other file you change." if
                   len(blocks) < len(files) else ".")) if blocks else None
        # As hidden tests the loop quotes them in its feedback without showing them whole.
        tests = {} if self.request.show_tests else tests
        brief = self.request.instruction or (
            "Fix this Go package so that it builds, passes `go vet` and passes its tests.")
        if note:
            brief += f"\n\nNote from the user: {note.strip()}"
        return Problem(id=f"fix-{Path(self.site.names[0]).stem}", package=package,
                       messages=messages, goal=goal, brief=brief, files=dict(files),
                       support_files=support, hidden_tests=tests, multi_file=multi,
                       format_hint=hint,
                       given=given if note is None else None,
                       answer_chars=len(goal) + sum(len(v) for v in files.values()))

    def parse_answer(self, text: str, problem: Problem, current: dict[str, str]
                     ) -> Extraction:
        """The loop's AnswerParser: edits to the named files only."""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise FormatError("the answer holds characters that are not valid Unicode (a lone "
                              "surrogate); answer again in plain UTF-8") from None
        base = {n: current.get(n, problem.files.get(n, self.original[n]))
                for n in self.site.names}
        ext = parse_edit_answer(text, base, self.rules)
        # The file's own end-of-file convention: a missing final newline stays missing.
        by_name = {t.name: t for t in self.site.targets}
        ext.files = {n: by_name[n].conform(c) if n in by_name else c
                     for n, c in ext.files.items()}
        return ext

    def checker_factory(self, problem: Problem) -> PackageChecker:
        return self.checker

    def close(self) -> None:
        self.ws.cleanup()

    def __enter__(self) -> FixSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unified_diff(name: str, old: str, new: str) -> str:
    lines = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                 fromfile=f"a/{name}", tofile=f"b/{name}")
    # A last line without a newline must not run into the next diff line.
    return "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n"
                   for ln in lines)


def changed_files(original: dict[str, str], proposed: dict[str, str]) -> dict[str, str]:
    return {n: c for n, c in proposed.items() if n in original and c != original[n]}


# -- applying, backups, undo -----------------------------------------------------------

class Backup(BaseModel):
    """What a file held before `fix` wrote it, and what `fix` wrote (to detect later edits)."""

    path: Path
    saved_at: float
    mode: int
    original_sha256: str
    written_sha256: str
    content_file: str


def backup_root() -> Path:
    override = os.environ.get(BACKUPS_ENV)
    return Path(override).expanduser() if override else cache_dir() / "backups"


def _backup_dir(path: Path) -> Path:
    # Keyed by absolute path: the same file name in two projects never collides.
    return backup_root() / hashlib.sha256(str(path).encode()).hexdigest()[:24]


def list_backups(path: Path) -> list[Backup]:
    """Backups of `path`, oldest first."""
    d = _backup_dir(Path(os.path.abspath(path)))
    out: list[Backup] = []
    for rec in sorted(d.glob("*.json")) if d.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            out.append(Backup.model_validate_json(rec.read_text()))
    return sorted(out, key=lambda b: b.saved_at)


def _save_backup(target: Target, written: str) -> Backup:
    d = _backup_dir(target.path)
    d.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.time():.6f}"
    content = d / f"{stamp}.orig"
    write_bytes_atomic(content, target.raw, mode=0o600)  # the exact bytes: CRLF, BOM
    rec = Backup(path=target.path, saved_at=float(stamp), mode=target.mode,
                 original_sha256=target.sha256,
                 written_sha256=sha256_bytes(written.encode("utf-8")),
                 content_file=content.name)
    write_text_atomic(d / f"{stamp}.json", rec.model_dump_json(indent=2), mode=0o600)
    return rec


def _drop_backup(rec: Backup) -> None:
    d = _backup_dir(rec.path)
    stamp = rec.content_file.removesuffix(".orig")
    for p in (d / rec.content_file, d / f"{stamp}.json"):
        p.unlink(missing_ok=True)


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[list[int]]:
    """Hold Ctrl-C until the block ends; the caller sees whether one came and undoes."""
    got: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    except ValueError:  # not the main thread: signals cannot arrive here anyway
        yield got
        return
    try:
        yield got
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _user_writes() -> Iterator[None]:
    """The scope in which `_write_user_file` may run: the apply step and undo only."""
    token = _APPLYING.set(True)
    try:
        yield
    finally:
        _APPLYING.reset(token)


def _write_user_file(path: Path, text: str, mode: int) -> None:
    """The one place `fix` writes a user's tree; anything but apply and undo is refused."""
    if not _APPLYING.get():
        raise RuntimeError(f"{path}: fix tried to write a user's file outside its apply step")
    write_text_atomic(path, text, mode=mode)


def _current(t: Target) -> str | None:
    """The sha256 of what `t` holds now, or None if it is gone, unreadable or not a file."""
    if Path(os.path.realpath(t.path)) != t.real:
        return None  # the link now points elsewhere
    try:
        return sha256_bytes(read_user_file(t.real)[0])
    except FixError:
        return None


def apply_changes(site: FixSite, new: dict[str, str]) -> list[Backup]:
    """Write the changed files atomically, all or none; a backup of each is kept.

    Refuses (StaleFileError, nothing written) when any file differs from what was read.
    A Ctrl-C during the writes is held, then everything written is put back; so is
    everything after a write fails (a FixError says which file and why).
    A link is kept: its target file is replaced.
    """
    if site.dry_run:
        raise RuntimeError("fix --dry-run reached the apply step; nothing was written")
    by_name = {t.name: t for t in site.targets}
    todo: list[tuple[Target, str]] = []
    for n, c in new.items():
        if n not in by_name:
            continue
        t = by_name[n]
        disk = t.to_disk(c)
        try:
            disk.encode("utf-8")
        except UnicodeEncodeError:
            raise FixError(f"{t.path}: the change is not valid UTF-8 text; nothing was "
                           "written") from None
        todo.append((t, disk))
    for t, _ in todo:
        if _current(t) != t.sha256:
            raise StaleFileError(f"{t.path}: changed on disk since it was read; nothing was "
                                 "written (run fix again on the new version)")
    backups: list[Backup] = []
    written: list[Target] = []
    with deferred_interrupt() as interrupted, _user_writes():
        try:
            for t, content in todo:
                backups.append(_save_backup(t, content))
                _write_user_file(t.real, content, t.mode)
                written.append(t)
            if interrupted:
                raise KeyboardInterrupt
        except BaseException as exc:
            kept = _roll_back(written, backups)
            if isinstance(exc, OSError):
                raise FixError(f"{exc.filename or 'a file'}: cannot write: "
                               f"{exc.strerror or exc}; {kept}") from None
            raise
    return backups


def _roll_back(written: list[Target], backups: list[Backup]) -> str:
    """Put back every file written so far; a backup is dropped only once its file is back."""
    stuck: list[Target] = []
    for t in written:
        try:
            _write_user_file(t.real, t.raw.decode("utf-8"), t.mode)
        except OSError:
            stuck.append(t)
    for b in backups:
        if not any(t.path == b.path for t in stuck):
            _drop_backup(b)
    if not stuck:
        return "nothing was changed"
    return ("could not put back " + ", ".join(str(t.path) for t in stuck)
            + "; its backup remains (guild-agent fix --undo)")


def undo(path: Path, *, force: bool = False) -> Backup:
    """Restore the latest backup of `path`; refuses if the file was edited after the fix."""
    p = Path(os.path.abspath(path.expanduser()))
    backups = list_backups(p)
    if not backups:
        raise FixError(f"{path}: no backup to restore (fix never changed it here)")
    rec = backups[-1]
    real = Path(os.path.realpath(p))  # a link is kept: its target is restored
    try:
        now: str | None = sha256_bytes(read_user_file(real)[0])
    except FixError:
        now = None
    if now != rec.written_sha256 and not force:
        raise FixError(f"{path}: edited since fix changed it; not restoring (use --force to "
                       "restore the pre-fix version anyway)")
    try:
        data = (_backup_dir(p) / rec.content_file).read_bytes()
        original = data.decode("utf-8")  # bytes as read: CRLF and BOM intact
    except (OSError, UnicodeDecodeError) as exc:
        raise FixError(f"{path}: the backup cannot be read: {exc}") from None
    try:
        with deferred_interrupt(), _user_writes():
            _write_user_file(real, original, rec.mode)
    except OSError as exc:
        raise FixError(f"{path}: cannot write: {exc.strerror or exc}; nothing was "
                       "restored") from None
    _drop_backup(rec)
    return rec


def git_changed_note(site: FixSite, names: list[str]) -> str | None:
    """Where `git diff` shows the applied change, when the files are in a work tree."""
    if site.git_root is None:
        return None
    rels = []
    for n in names:
        p = site.package_dir / n
        try:
            rels.append(p.relative_to(site.git_root).as_posix())
        except ValueError:
            rels.append(str(p))
    return f"git: changed {', '.join(rels)} in {site.git_root} (see `git diff -- " \
           f"{' '.join(rels)}`)"

