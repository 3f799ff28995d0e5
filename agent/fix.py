"""Fixing a user's own Go files: find the package, work on a scratch copy, apply safely.

The user's tree is only ever read until they accept a change; then `apply_changes` writes
it atomically after checking nothing changed on disk meanwhile, and keeps a backup that
`undo` restores. Everything in between happens in a scratch copy of the module.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from agent.atomic import write_text_atomic
from agent.edits import BLOCKS_OVER_LINES, EditMode, EditRules, choose_modes, parse_edit_answer
from agent.extract import Extraction
from agent.fixes import FIX_NAMES
from agent.harness import Suite
from agent.prompts import render
from agent.task import TaskSpec
from tools.diagnostics import CheckResult
from tools.go import cache_dir
from tools.gofmt import gofmt_source
from tools.runner import CheckOptions, GoRunner, test_names
from tools.workspace import Requirement, Workspace, read_nofollow

BACKUPS_ENV = "GUILD_AGENT_FIX_BACKUPS"  # tests point backups elsewhere, keeping the GOCACHE
MAX_COPY_FILE_BYTES = 8 * 1024 * 1024  # larger files are build outputs or data, not source
SKIP_DIRS = {".git", ".hg", ".svn", ".jj", "node_modules", ".idea", ".vscode", "__pycache__"}
SUPPORT_CHARS = 16_000  # how much of the package's other files the model is shown
_PACKAGE_RE = re.compile(r"^\s*package\s+(\w+)", re.M)
_MODULE_RE = re.compile(r"^\s*module\s+\"?([^\s\"]+)\"?", re.M)
_REL_REPLACE_RE = re.compile(r"(=>\s*)(\.{1,2}(?:/[^\s]*)?)(\s*(?:$|//))", re.M)


class FixError(ValueError):
    """Bad input for `fix` (a path, a package, a backup): one line, exit 2."""


class StaleFileError(FixError):
    """A file changed on disk after it was read: applying would lose someone's edit."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Target(BaseModel):
    """One file the user named: what it held when read, so a later write can be refused."""

    path: Path  # absolute
    name: str  # relative to the package directory (the name the model sees)
    text: str
    sha256: str
    mode: int


class FixSite(BaseModel):
    """Where the named files live: module, package directory and repository."""

    targets: list[Target]
    package: str  # the Go package name
    package_dir: Path
    module_root: Path | None  # None: no go.mod above, a temporary module is made
    package_rel: str = "."  # package directory relative to the module root
    git_root: Path | None = None

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.targets]

    def pattern(self) -> str:
        """The package as a `go test` argument from the module root."""
        return "." if self.package_rel == "." else "./" + self.package_rel


def _strip_comments(src: str) -> str:
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def package_of(source: str) -> str | None:
    m = _PACKAGE_RE.search(_strip_comments(source))
    return m.group(1) if m else None


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


def read_target(path: Path, package_dir: Path) -> Target:
    try:
        data = path.read_bytes()
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise FixError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FixError(f"{path}: not UTF-8 text; Go source must be UTF-8") from None
    return Target(path=path, name=path.relative_to(package_dir).as_posix(), text=text,
                  sha256=sha256_bytes(data), mode=mode)


def locate(paths: list[Path]) -> FixSite:
    """Check the named files and find their package and module. Raises FixError."""
    if not paths:
        raise FixError("name at least one .go file to fix")
    resolved: list[Path] = []
    for p in paths:
        rp = Path(os.path.abspath(p.expanduser()))
        if not rp.exists():
            raise FixError(f"{p}: no such file")
        if rp.is_dir():
            raise FixError(f"{p}: is a directory; name the .go files to fix")
        if rp.suffix != ".go":
            raise FixError(f"{p}: not a .go file")
        if rp not in resolved:
            resolved.append(rp)
    dirs = {p.parent for p in resolved}
    if len(dirs) > 1:
        raise FixError("the files must be in one package directory; got "
                       + ", ".join(sorted(str(d) for d in dirs)))
    package_dir = dirs.pop()
    targets = [read_target(p, package_dir) for p in resolved]
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
    return FixSite(targets=targets, package=package, package_dir=package_dir,
                   module_root=root, package_rel=rel, git_root=git_root(package_dir))


# -- the scratch copy ----------------------------------------------------------------------

def _copy_ignore(root: Path):
    def ignore(directory: str, entries: list[str]) -> set[str]:
        d = Path(directory)
        skipped: set[str] = set()
        for e in entries:
            p = d / e
            if e in SKIP_DIRS:
                skipped.add(e)
            elif p.is_dir() and not p.is_symlink() and d != root and (p / "go.mod").is_file():
                skipped.add(e)  # a nested module is not part of this one
            elif p.is_file() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    if p.stat().st_size > MAX_COPY_FILE_BYTES and p.suffix not in (
                            ".go", ".mod", ".sum"):
                        skipped.add(e)
        return skipped
    return ignore


def _absolute_replaces(go_mod: str, root: Path) -> tuple[str, list[Path]]:
    """go.mod with relative `replace` targets made absolute: the copy lives elsewhere."""
    found: list[Path] = []

    def sub(m: re.Match[str]) -> str:
        target = (root / m.group(2)).resolve()
        found.append(target)
        return f"{m.group(1)}{target}{m.group(3)}"

    return _REL_REPLACE_RE.sub(sub, go_mod), found


def scratch_copy(site: FixSite) -> Workspace:
    """A workspace holding a copy of the module (or of the lone package and a temp go.mod)."""
    ws = Workspace(module="fixsandbox", prefix="guild-fix-")
    try:
        if site.module_root is None:
            # No module: the package directory's Go files (and testdata) under a temp go.mod.
            for p in sorted(site.package_dir.iterdir()):
                if p.is_file() and p.suffix == ".go":
                    shutil.copy2(p, ws.base / p.name)
            if (site.package_dir / "testdata").is_dir():
                shutil.copytree(site.package_dir / "testdata", ws.base / "testdata",
                                symlinks=True)
        else:
            shutil.copytree(site.module_root, ws.base, symlinks=True, dirs_exist_ok=True,
                            ignore=_copy_ignore(site.module_root),
                            ignore_dangling_symlinks=True)
            go_mod = (ws.base / "go.mod").read_text()
            fixed, local = _absolute_replaces(go_mod, site.module_root)
            if fixed != go_mod:
                (ws.base / "go.mod").write_text(fixed)
            # The runner lets the sandbox read `replace` directories named as requirements.
            ws.requires = [Requirement(module=f"local{i}", replace=str(p))
                           for i, p in enumerate(local)]
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
                 runner: GoRunner | None = None) -> None:
        self.ws = ws
        self.site = site
        self.run = run
        self.race = race
        self.test_timeout = test_timeout
        self.runner = runner or GoRunner()
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
              run: str | None = None) -> CheckResult:
        for name, content in solution.items():
            if name in self.site.names:  # anything else stays as the user has it
                self.ws.write(self.prefix + name, content)
        run = run or self.run
        opts = CheckOptions(test_timeout=self.test_timeout, run=run, full_vet=True,
                            race=self.race,
                            limits=self.runner.options.limits,
                            build_allowance=self.runner.options.build_allowance)
        result = self.runner.check(self.ws, expected_tests=self.expected_tests(run),
                                   options=opts, pkg=self.site.pattern())
        if self.site.package_rel != ".":
            # Name files as the model knows them: relative to the package directory.
            prefix = self.site.package_rel + "/"
            result.diagnostics = [
                d.model_copy(update={"file": d.file.removeprefix(prefix)})
                if d.file else d for d in result.diagnostics]
        if run == self.run:
            self.last = ({n: c for n, c in solution.items() if n in self.site.names}, result)
        return result

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


class FixSession:
    """One `fix` invocation's scratch copy, edit modes and the task the loop is given."""

    def __init__(self, site: FixSite, request: FixRequest) -> None:
        self.site = site
        self.request = request
        self.original = {t.name: t.text for t in site.targets}
        self.modes = choose_modes(self.original, request.block_lines)
        self.ws = scratch_copy(site)
        self.checker = PackageChecker(self.ws, site, run=request.run,
                                      test_timeout=request.test_timeout, race=request.race)
        self.rules = EditRules(package=site.package, editable=site.names,
                               protected=sorted(set(self._package_files()) - set(site.names)))

    def _package_files(self) -> dict[str, str]:
        return {p.name: read_nofollow(p).decode(errors="replace")
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

    def support_files(self) -> dict[str, str]:
        """The package's other files the model is shown (tests first), within a budget."""
        others = {n: c for n, c in self._package_files().items() if n not in self.site.names}
        order = sorted(others, key=lambda n: (not n.endswith("_test.go"), n))
        shown: dict[str, str] = {}
        used = 0
        for n in order:
            if used + len(others[n]) > SUPPORT_CHARS:
                continue
            shown[n] = others[n]
            used += len(others[n])
        return shown

    def task(self, files: dict[str, str], *, feedback: str = "", note: str | None = None
             ) -> TaskSpec:
        """The loop's task: the files as they stand now, the goal, and how to edit them."""
        prompt = render("fix_task", instruction=self.request.instruction, note=note,
                        editable=self.site.names, feedback=feedback,
                        blocks=[n for n, m in self.modes.items() if m is EditMode.blocks],
                        run=self.request.run)
        return TaskSpec(id=f"fix-{Path(self.site.names[0]).stem}", prompt=prompt,
                        tests="// the package's own tests are run in place",
                        package=self.site.package, files=dict(files),
                        support_files=self.support_files())

    def parse_answer(self, text: str, task: TaskSpec, current: dict[str, str]) -> Extraction:
        """The loop's AnswerParser: edits to the named files only."""
        base = {n: current.get(n, task.files.get(n, self.original[n])) for n in self.site.names}
        return parse_edit_answer(text, base, self.rules)

    def checker_factory(self, task: TaskSpec) -> PackageChecker:
        return self.checker

    def close(self) -> None:
        self.ws.cleanup()

    def __enter__(self) -> FixSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def unified_diff(name: str, old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        fromfile=f"a/{name}", tofile=f"b/{name}"))


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
    write_text_atomic(content, target.text, mode=0o600)
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


def apply_changes(site: FixSite, new: dict[str, str]) -> list[Backup]:
    """Write the changed files atomically, all or none; a backup of each is kept.

    Refuses (StaleFileError, nothing written) when any file differs from what was read.
    A Ctrl-C during the writes is held, then everything written is put back.
    """
    by_name = {t.name: t for t in site.targets}
    todo = [(by_name[n], c) for n, c in new.items() if n in by_name]
    for t, _ in todo:
        try:
            now = sha256_bytes(t.path.read_bytes())
        except OSError:
            now = None
        if now != t.sha256:
            raise StaleFileError(f"{t.path}: changed on disk since it was read; nothing was "
                                 "written (run fix again on the new version)")
    backups: list[Backup] = []
    written: list[Target] = []
    with deferred_interrupt() as interrupted:
        try:
            for t, content in todo:
                backups.append(_save_backup(t, content))
                write_text_atomic(t.path, content, mode=t.mode)
                written.append(t)
            if interrupted:
                raise KeyboardInterrupt
        except BaseException:
            for t in written:
                write_text_atomic(t.path, t.text, mode=t.mode)
            for b in backups:
                _drop_backup(b)
            raise
    return backups


def undo(path: Path, *, force: bool = False) -> Backup:
    """Restore the latest backup of `path`; refuses if the file was edited after the fix."""
    p = Path(os.path.abspath(path.expanduser()))
    backups = list_backups(p)
    if not backups:
        raise FixError(f"{path}: no backup to restore (fix never changed it here)")
    rec = backups[-1]
    try:
        now = sha256_bytes(p.read_bytes())
    except FileNotFoundError:
        now = None
    if now != rec.written_sha256 and not force:
        raise FixError(f"{path}: edited since fix changed it; not restoring (use --force to "
                       "restore the pre-fix version anyway)")
    original = (_backup_dir(p) / rec.content_file).read_text(encoding="utf-8")
    with deferred_interrupt():
        write_text_atomic(p, original, mode=rec.mode)
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

