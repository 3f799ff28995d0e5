"""Run `go test -json` on a workspace and turn its events into a CheckResult."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from tools.diagnostics import (
    CheckResult,
    CoverBlock,
    Diagnostic,
    Kind,
    Outcome,
    TestResult,
    dedupe,
)
from tools.go import find_toolchain, go_env
from tools.guard import GUARD_ENV, guard_binary
from tools.sandbox import Limits, ProcResult, run_limited
from tools.verdict import SENTINEL_PREFIX, Sentinel, plan_sentinel
from tools.workspace import Workspace

LOG_CAP = 64 * 1024
TEST_FUNC_RE = re.compile(r"^func\s+(Test\w*|Example\w*|Fuzz\w*)\s*\(", re.M)
_POS_RE = re.compile(
    r"^(?P<file>[^\s:][^:\n]*?\.go):(?P<line>\d+)(?::(?P<col>\d+))?:\s?(?P<msg>.*)$")
_FRAME_RE = re.compile(r"^\s*(=== (RUN|PAUSE|CONT|NAME)|--- (FAIL|PASS|SKIP))")
_TEST_LOG_RE = re.compile(r"^\s+(?P<file>[\w./-]+\.go):(?P<line>\d+): (?P<msg>.*)$")
_STACK_RE = re.compile(r"^\s+(?P<path>/\S+?\.go):(?P<line>\d+)")
_CRASH_PREFIXES = ("panic: ", "fatal error: ")
_RECOVERED_RE = re.compile(r" \[recovered(?:, repanicked)?\]$")
_COVER_RE = re.compile(
    r"^(?P<file>\S+\.go):(?P<start>\d+)\.\d+,(?P<end>\d+)\.\d+ \d+ (?P<count>\d+)$")
COVER_FILE = "guild-cover.out"
COVER_CAP = 1 << 20  # the test binary writes the profile: it may write anything


def test_names(source: str) -> list[str]:
    """Top-level test functions declared in a Go test file."""
    return [n for n in TEST_FUNC_RE.findall(source) if n.startswith("Test") and n != "TestMain"]


@dataclass(frozen=True)
class CheckOptions:
    test_timeout: float = 10.0  # go test -timeout
    build_allowance: float = 90.0  # wall-clock on top of the test timeout (a cold compile)
    run: str | None = None  # -run regex
    race: bool = False
    full_vet: bool = False  # an extra `go vet`; go test already runs the high-signal checks
    limits: Limits = field(default_factory=Limits)
    # A caller's additions (fix: the user's read-only module cache, build tags): set last.
    env: tuple[tuple[str, str], ...] = ()
    readable: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()  # folders model code must not see (fix: the user's project)
    cover: bool = False  # record which blocks ran (CheckResult.coverage)


class GoRunner:
    """The Checker the loop uses: one `go test -json` per round (plus `go vet` on request)."""

    def __init__(self, options: CheckOptions | None = None) -> None:
        self.options = options or CheckOptions()

    def check(
        self,
        ws: Workspace,
        *,
        expected_tests: list[str] | None = None,
        options: CheckOptions | None = None,
        pkg: str = "./...",
    ) -> CheckResult:
        """Build, vet and test the workspace package (`pkg`: a package pattern, e.g. `./cmd`).

        The run sees a copy rebuilt from the workspace's own files (`Workspace.prepare`),
        never what an earlier run left. `expected_tests` are the top-level tests that must
        report a pass, and a pass also needs the sentinel's secret back (tools.verdict):
        printed events, an early exit 0 or a stand-in `TestMain` cannot fake one.
        """
        opts = options or self.options
        expected = list(expected_tests or [])
        sentinel = plan_sentinel(ws, _pkg_dir(pkg), expected)
        ws.prepare(extra=sentinel.files)
        sentinel.arm(ws)
        tc = find_toolchain()
        env = go_env(ws.home, ws.tmp, cgo=opts.race)
        if (ws.src / "vendor" / "modules.txt").is_file():
            # A user's vendored module (fix) builds from its vendor tree: nothing to fetch.
            env["GOFLAGS"] = "-mod=vendor"
        env.update(dict(opts.env))
        args = [str(tc.go), "test", "-json", "-count=1",
                f"-timeout={_go_duration(opts.test_timeout)}"]
        if (guard := guard_binary()) is not None:
            # The go command writes the shared cache; the test binary it runs may not.
            args.append(f"-exec={shlex.quote(str(guard))}")
            env[GUARD_ENV] = os.pathsep.join(str(d) for d in (ws.src, ws.home, ws.tmp))
        if opts.race:
            args.append("-race")
        if opts.run:
            args.append(f"-run={opts.run}")
        profile = ws.tmp / COVER_FILE
        if opts.cover:
            # The race detector takes only atomic counters (a count run fails at once).
            args += [f"-covermode={'atomic' if opts.race else 'count'}",
                     f"-coverprofile={profile}"]
        args.append(pkg)
        limits = replace(opts.limits, wall_seconds=opts.test_timeout + opts.build_allowance)
        if opts.race:
            # The race runtime maps terabytes of shadow memory: an address-space cap breaks it.
            limits = replace(limits, memory_bytes=None)
        start = time.monotonic()
        # Sandboxed: only the workspace and the shared build cache are writable; the
        # toolchain, module cache and local replacements stay readable under hidden dirs.
        # Each its own bind mount: a mount point cannot be renamed or replaced by a link.
        writable = [ws.src, ws.home, ws.tmp, Path(env["GOCACHE"])]
        readable = [tc.goroot, tc.bin_dir, Path(env["GOCACHE"]).parent,
                    *(Path(r.replace) for r in ws.requires if r.replace), *opts.readable]
        proc = run_limited(args, cwd=ws.src, env=env, limits=limits, writable=writable,
                           readable=readable, hidden=opts.hidden)
        result = parse_test_json(proc, ws.src, opts.test_timeout, expected_tests)
        if opts.cover:  # read now: a later prepare() (vet) empties tmp/
            result.coverage = read_profile(profile)
        limit_notes = [n for n in proc.notes if n.startswith("process limit")]
        if limit_notes and not result.passed:
            # A fork bomb can starve the go command itself: its crash is not a compile error.
            result.diagnostics = [
                d.model_copy(update={"kind": Kind.limit}) if d.kind is Kind.compile
                and not d.file else d for d in result.diagnostics]
            result.diagnostics.insert(0, Diagnostic(message=limit_notes[0], kind=Kind.limit))
        _settle(sentinel, ws, result)
        if opts.full_vet and result.built:
            # The test binary could have rewritten or deleted its sources: vet a fresh copy.
            ws.prepare(extra=sentinel.files)
            vet = run_limited([str(tc.go), "vet", pkg], cwd=ws.src, env=env, limits=limits,
                              writable=writable, readable=readable, hidden=opts.hidden)
            vet_diags = [
                d.model_copy(update={"kind": Kind.vet})
                for d in _position_diagnostics(vet.output.decode(errors="replace"), ws.src,
                                               Kind.vet)
            ]
            if vet_diags:
                result.diagnostics = dedupe(result.diagnostics + vet_diags)
                result.passed = False
        result.seconds = time.monotonic() - start
        return result


def read_profile(path: Path) -> list[CoverBlock]:
    """The blocks of a `-coverprofile` file; nothing when it is missing, a link, a FIFO or
    anything but a regular file, or too big. Model code ran in the binary that wrote it,
    so this steers feedback only."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return []
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return []
    with os.fdopen(fd, "rb") as f:
        data = f.read(COVER_CAP + 1)
    if len(data) > COVER_CAP:
        return []
    out = []
    for line in data.decode(errors="replace").splitlines()[1:]:
        if m := _COVER_RE.match(line.strip()):
            out.append(CoverBlock(file=m["file"], start=int(m["start"]), end=int(m["end"]),
                                  count=int(m["count"])))
    return out


_RACE_ACCESS_RE = re.compile(r"^(Read|Write|Previous read|Previous write) at \S+ by "
                             r"(goroutine \d+|main goroutine):")


def _race_diagnostic(test: str, lines: list[str], root: Path) -> Diagnostic:
    """The race detector's report, cut to the two conflicting accesses and where they are."""
    start = next(i for i, ln in enumerate(lines) if "WARNING: DATA RACE" in ln)
    accesses: list[str] = []
    file = line = None
    i = start + 1
    while i < len(lines) and not lines[i].startswith("=================="):
        m = _RACE_ACCESS_RE.match(lines[i].strip())
        if m:
            # The first frame inside the workspace says where this access is.
            for j in range(i + 1, min(i + 40, len(lines))):
                f = _STACK_RE.match(lines[j])
                if f and f["path"].startswith((str(root), str(root.resolve()))):
                    func = lines[j - 1].strip()
                    rel, ln_no = _rel(f["path"], root), int(f["line"])
                    accesses.append(f"{m.group(1).lower()} in {func} at {rel}:{ln_no}")
                    if file is None:
                        file, line = rel, ln_no
                    break
        i += 1
    detail = "; ".join(accesses[:2]) or "see the race detector report"
    return Diagnostic(file=file, line=line, kind=Kind.test_failure, test=test,
                      message=f"data race (unsynchronized concurrent access): {detail}")


def _go_duration(seconds: float) -> str:
    """`-timeout` as Go reads it: 0.5 s must not become `0s`, which means no timeout."""
    return f"{max(1, round(seconds * 1000))}ms"


def _pkg_dir(pkg: str) -> str:
    """The folder of a `go test` package argument, relative to the module root."""
    p = pkg.removesuffix("/...").removeprefix("./")
    return p if p not in ("", ".", "...") else "."


def _settle(sentinel: Sentinel, ws: Workspace, result: CheckResult) -> None:
    result.diagnostics = [d for d in result.diagnostics
                          if not sentinel.is_sentinel_file(d.file)] or result.diagnostics
    if result.passed and not sentinel.confirmed(ws):
        result.passed = False
        why = sentinel.problem or (
            "the test binary did not run the tests to completion (os.Exit or a crash "
            "before they finished, or printed fake results)")
        result.diagnostics.append(Diagnostic(
            message=f"not counted as a pass: {why}", kind=Kind.test_failure))


def _rel(path: str, root: Path) -> str:
    p = path.strip()
    for prefix in (str(root) + "/", str(root.resolve()) + "/", "./"):
        if p.startswith(prefix):
            return p[len(prefix):]
    return p


def _position_diagnostics(text: str, root: Path, kind: Kind) -> list[Diagnostic]:
    """`file:line:col: message` lines (with tab-indented continuations) as diagnostics."""
    out: list[Diagnostic] = []
    section = kind
    for raw in text.splitlines():
        if raw.startswith("# "):
            # `# [pkg]` heads vet output; `# pkg` or `# pkg [pkg.test]` heads compiler output.
            section = Kind.vet if re.match(r"^# \[.*\]$", raw) else kind
            continue
        if raw.startswith("\t") and out:
            last = out[-1]
            out[-1] = last.model_copy(update={"message": last.message + "\n" + raw.strip()})
            continue
        m = _POS_RE.match(raw.strip())
        if not m:
            continue
        msg = m["msg"].strip()
        if msg.startswith("too many errors"):
            continue
        out.append(Diagnostic(
            file=_rel(m["file"], root), line=int(m["line"]),
            column=int(m["col"]) if m["col"] else None, message=msg, kind=section,
        ))
    return out


_TESTIFY_FIELD = re.compile(r"^\s*(?P<key>Error Trace|Error|Test|Messages|Diff):\s*(?P<rest>.*)$")


def _testify_reports(lines: list[str]) -> list[str]:
    """testify's failure reports, each made one line a small model can read:
    `file:line: Not equal: expected: 14, actual: 6` (and its Messages). Its trace (an
    absolute path), test name and diff say again what the line and values already say.
    Lines of other tests pass through as they are."""
    out: list[str] = []
    head: str | None = None  # the `file:line:` line a report hangs under
    fields: dict[str, list[str]] = {}
    key: str | None = None

    def flush() -> None:
        if head is not None:
            text = ""
            for part in [*fields.get("Error", []), *fields.get("Messages", [])]:
                part = " ".join(part.split()).replace("actual :", "actual:")
                if part:
                    text = f"{text}{' ' if text.endswith(':') else ', '}{part}" if text else part
            out.append(f"{head.rstrip()} {text}")

    for ln in lines:
        m = _TEST_LOG_RE.match(ln)
        if m:  # a new message: a report starts with an empty one
            flush()
            head, fields, key = (ln, {}, None) if not m["msg"].strip() else (None, {}, None)
            if head is None:
                out.append(ln)
            continue
        f = _TESTIFY_FIELD.match(ln) if head is not None else None
        if f is not None:
            key = f["key"]
            fields.setdefault(key, []).append(f["rest"])
        elif head is not None and key is not None and ln.startswith((" ", "\t")):
            fields[key].append(ln.strip())
        else:
            flush()
            head, fields, key = None, {}, None
            out.append(ln)
    flush()
    return out


def _strip_frames(lines: list[str]) -> list[str]:
    return [ln for ln in lines if not _FRAME_RE.match(ln)]


def _crash_index(lines: list[str]) -> int | None:
    """Where a Go panic or runtime fatal error (deadlock, out of memory …) starts."""
    return next((i for i, ln in enumerate(lines) if ln.startswith(_CRASH_PREFIXES)), None)


def _panic_diagnostic(test: str | None, lines: list[str], root: Path) -> Diagnostic:
    """The panic message, located at the first stack frame inside the workspace."""
    idx = _crash_index(lines)
    assert idx is not None
    # The testing package re-panics a test's panic: "[recovered, repanicked]" is its
    # bookkeeping, not the program's message.
    message = _RECOVERED_RE.sub("", lines[idx].rstrip())
    file = line = None
    src_root = str(root.resolve())
    for ln in lines[idx:]:
        m = _STACK_RE.match(ln)
        if (m and (m["path"].startswith(src_root) or m["path"].startswith(str(root)))
                and SENTINEL_PREFIX not in m["path"]):
            file, line = _rel(m["path"], root), int(m["line"])
            break
    timeout = message.startswith("panic: test timed out")
    if timeout:
        # Go prints "\trunning tests:" then one "\t\tTestName (2s)" line per running test.
        running = []
        for ln in lines[idx + 1:]:
            if ln.startswith("\t\t") and ln.rstrip().endswith(")"):
                running.append(ln.strip().split(" ")[0])
            elif running or not ln.startswith("\t"):
                break
        msg = message.removeprefix("panic: ")
        if running:
            msg += "; still running: " + ", ".join(running[:5])
        # Where the stuck goroutine is: a blocked channel op or lock names its line.
        return Diagnostic(file=file, line=line, message=msg, kind=Kind.timeout, test=test)
    if message == "fatal error: out of memory":
        # The runtime names the failed allocation on the line before.
        detail = lines[idx - 1].strip() if idx > 0 else ""
        if detail.startswith("runtime: out of memory"):
            message = "fatal error: " + detail.removeprefix("runtime: ")
        return Diagnostic(file=file, line=line, message=message, kind=Kind.limit, test=test)
    return Diagnostic(file=file, line=line, message=message, kind=Kind.panic, test=test)


def parse_test_json(
    proc: ProcResult,
    root: Path,
    test_timeout: float,
    expected_tests: list[str] | None = None,
) -> CheckResult:
    text = proc.output.decode(errors="replace")
    build_text: list[str] = []
    loose: list[str] = []
    test_out: dict[str, list[str]] = {}
    test_err: dict[str, list[str]] = {}
    outcomes: dict[str, Outcome] = {}
    elapsed: dict[str, float] = {}
    pkg_out: list[str] = []
    build_failed = False
    pkg_failed = False
    for raw in text.splitlines():
        if not raw.startswith("{"):
            loose.append(raw)
            continue
        try:
            ev = json.loads(raw)
        except json.JSONDecodeError:
            loose.append(raw)
            continue
        if not isinstance(ev, dict):
            continue
        # A test binary can forge event lines: trust no field's type.
        action = ev.get("Action")
        test = ev.get("Test") if isinstance(ev.get("Test"), str) else None
        out = ev.get("Output") if isinstance(ev.get("Output"), str) else ""
        if action == "build-output":
            build_text.append(out)
        elif action == "build-fail":
            build_failed = True
        elif action == "output":
            if test:
                test_out.setdefault(test, []).append(out)
                # A multi-line t.Error message: its first line is "error", the rest
                # "error-continue" (testify's whole report is in the rest).
                if ev.get("OutputType") in ("error", "error-continue"):
                    test_err.setdefault(test, []).append(out)
            else:
                pkg_out.append(out)
        elif action in ("pass", "fail", "skip"):
            if test:
                outcomes[test] = Outcome(action)
                el = ev.get("Elapsed")
                elapsed[test] = float(el) if isinstance(el, int | float) else 0.0
            elif action == "fail":
                pkg_failed = True
                if ev.get("FailedBuild"):
                    build_failed = True

    diags: list[Diagnostic] = []
    build_log = "".join(build_text)
    if build_failed or (loose and proc.exit_code not in (0, None) and not outcomes):
        diags += _position_diagnostics(build_log + "\n" + "\n".join(loose), root, Kind.compile)
        if not diags:
            msg = "\n".join(ln for ln in (build_log.splitlines() + loose)
                            if ln.strip() and not ln.startswith("#"))
            diags.append(Diagnostic(message=msg.strip()[:2000] or "build failed",
                                    kind=Kind.toolchain if msg.startswith("go:") else Kind.compile))

    tests: list[TestResult] = []
    for name, outcome in outcomes.items():
        lines = "".join(test_out.get(name, [])).splitlines()
        tests.append(TestResult(name=name, outcome=outcome, output="\n".join(lines)[:4000],
                                seconds=elapsed.get(name, 0.0)))
    failed = {t.name for t in tests if t.outcome is Outcome.failed}
    # Report the innermost failures: a parent fails whenever one of its subtests does.
    leaves = [n for n in failed if not any(o.startswith(n + "/") for o in failed)]
    for name in sorted(leaves, key=lambda n: list(outcomes).index(n)):
        lines = "".join(test_out.get(name, [])).splitlines()
        if _crash_index(lines) is not None:
            diags.append(_panic_diagnostic(name, lines, root))
            continue
        if any("WARNING: DATA RACE" in ln for ln in lines):
            diags.append(_race_diagnostic(name, lines, root))
            continue
        errs = "".join(test_err.get(name, [])).splitlines() or _strip_frames(lines)
        file = line = None
        msgs: list[str] = []
        for ln in _testify_reports(errs):
            m = _TEST_LOG_RE.match(ln)
            if m and file is None:
                file, line = m["file"], int(m["line"])
            msgs.append(m["msg"] if m else ln.strip())
        message = "\n".join(x for x in msgs if x) or "test failed"
        diags.append(Diagnostic(file=file, line=line, message=message,
                                kind=Kind.test_failure, test=name))
    # A crash that kills the test binary (timeout panic, deadlock, out of memory) leaves
    # the running test with output but no pass/fail event: it failed all the same.
    for name, chunks in test_out.items():
        if name in outcomes:
            continue
        lines = "".join(chunks).splitlines()
        if _crash_index(lines) is None:
            continue
        diags.append(_panic_diagnostic(name, lines, root))
        tests.append(TestResult(name=name, outcome=Outcome.failed,
                                output="\n".join(lines)[:4000]))
        failed.add(name)
    # Panics can also be reported outside any test (in init, or after a test returned).
    orphan = [ln.rstrip("\n") for ln in pkg_out]
    if _crash_index(orphan) is not None and not any(
        d.kind in (Kind.panic, Kind.timeout, Kind.limit) for d in diags
    ):
        diags.append(_panic_diagnostic(None, orphan, root))
    all_lines = "".join(o for v in test_out.values() for o in v).splitlines()
    if (not any(d.kind is Kind.timeout for d in diags)
            and any(ln.startswith("panic: test timed out") for ln in all_lines)):
        diags.append(Diagnostic(message=f"test timed out after {test_timeout:g}s",
                                kind=Kind.timeout))

    if proc.timed_out:
        diags.append(Diagnostic(
            message=f"killed after {proc.seconds:.0f}s wall clock (limit reached: the code "
                    "hangs, loops forever or blocks)", kind=Kind.timeout))
    if proc.output_truncated:
        diags.append(Diagnostic(message="output limit exceeded: the run printed too much and "
                                "was stopped", kind=Kind.limit))
    if proc.exit_code not in (0, None) and not diags and not build_failed:
        tail = "\n".join(ln for ln in (pkg_out + loose) if ln.strip())[-1500:]
        diags.append(Diagnostic(
            message=f"test binary failed (exit {proc.exit_code}) without a failing test"
                    + (f":\n{tail.strip()}" if tail.strip() else ""),
            kind=Kind.limit if proc.exit_code and proc.exit_code < 0 else Kind.test_failure))

    passed_names = {t.name for t in tests if t.outcome is Outcome.passed}
    missing = [t for t in (expected_tests or []) if t not in passed_names
               and t not in outcomes]
    if missing and not diags:
        diags.append(Diagnostic(
            message="tests did not run (the program exited before them): " + ", ".join(missing),
            kind=Kind.test_failure))
    passed = (
        proc.exit_code == 0
        and not build_failed
        and not pkg_failed
        and not failed
        and not missing
        and not diags
        and (bool(passed_names) or expected_tests == [])
    )
    log = text if len(text) <= LOG_CAP else (
        text[: LOG_CAP // 2] + "\n... [log trimmed] ...\n" + text[-LOG_CAP // 2:])
    return CheckResult(
        passed=passed,
        built=not build_failed,
        diagnostics=dedupe(diags),
        tests=tests,
        log=log,
        seconds=proc.seconds,
        timed_out=proc.timed_out or any(d.kind is Kind.timeout for d in diags),
        exit_code=proc.exit_code,
    )
