"""Turn a CheckResult into feedback a small model can act on: short, located, concrete."""

from __future__ import annotations

import re

from tools.diagnostics import CheckResult, Diagnostic, Kind

MAX_DIAGNOSTICS = 6
MAX_TESTS = 4
MAX_MESSAGE_LINES = 12
CONTEXT_LINES = 2
# Lines cap only half of it: a one-line 3 MB panic message would still be a 786k-token
# prompt. Every piece is also capped by characters.
MAX_LINE_CHARS = 300
MAX_MESSAGE_CHARS = 1500
MAX_FEEDBACK_CHARS = 8000

_TMP_PATH = re.compile(r"(/[\w.+-]+)*/guild-[\w.-]+/src/")
_TIMING = re.compile(r"\s*\(\d+\.\d+s\)")


def clean(text: str) -> str:
    """Strip absolute scratch paths and timings: noise to a model, different every run."""
    return _TIMING.sub("", _TMP_PATH.sub("", text))


def cut(text: str, limit: int) -> str:
    """At most `limit` characters: the head, and how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f" ... ({len(text) - limit} characters omitted)"


def trim(text: str, max_lines: int = MAX_MESSAGE_LINES) -> str:
    """Head and tail of a long message, never the whole dump: by lines and by characters."""
    lines = [cut(ln, MAX_LINE_CHARS) for ln in text.splitlines()]
    if len(lines) > max_lines:
        head = max_lines * 2 // 3
        tail = max_lines - head
        lines = (lines[:head] + [f"... ({len(lines) - max_lines} lines omitted) ..."]
                 + lines[-tail:])
    return cut("\n".join(lines), MAX_MESSAGE_CHARS)


def source_context(files: dict[str, str], d: Diagnostic) -> str:
    """The lines a diagnostic names, numbered, with the offending line marked."""
    if not d.file or not d.line or d.file not in files:
        return ""
    lines = files[d.file].splitlines()
    lo = max(1, d.line - CONTEXT_LINES)
    hi = min(len(lines), d.line + CONTEXT_LINES)
    out = []
    for n in range(lo, hi + 1):
        mark = ">" if n == d.line else " "
        out.append(f"{mark}{n:4d} | {cut(lines[n - 1], MAX_LINE_CHARS)}")
        if n == d.line and d.column:
            prefix = lines[n - 1][: d.column - 1]
            pad = "".join("\t" if c == "\t" else " " for c in prefix)
            out.append(f"      | {pad}^")
    return "\n".join(out)


def _heading(d: Diagnostic) -> str:
    if d.kind is Kind.compile:
        return "Compile error"
    if d.kind is Kind.vet:
        return "go vet"
    if d.kind is Kind.panic:
        return f"Panic in {d.test}" if d.test else "Panic"
    if d.kind is Kind.timeout:
        return "Timeout"
    if d.kind is Kind.test_failure:
        return f"Test {d.test} failed" if d.test else "Tests failed"
    if d.kind is Kind.limit:
        return "Resource limit"
    return "Error"


def failing_case(files: dict[str, str], d: Diagnostic) -> str:
    """For a failed subtest (`TestX/empty_input`), the table row that names it in the test
    source the model may see: the inputs of the failing case, not only got/want."""
    if d.kind not in (Kind.test_failure, Kind.panic) or not d.test or "/" not in d.test:
        return ""
    if not d.file or d.file not in files:
        return ""
    sub = d.test.split("/", 1)[1]
    lines = files[d.file].splitlines()
    wanted = [f'"{sub}"', f'"{sub.replace("_", " ")}"']
    for n, line in enumerate(lines, 1):
        if n != d.line and any(w in line for w in wanted) and "t.Run" not in line:
            return f"The failing case, {d.file} line {n}:\n>{n:4d} | {cut(line, MAX_LINE_CHARS)}"
    return ""


def _ends(text: str, keep: int = 20_000) -> str:
    """Head and tail of a huge message, before any regex runs over it."""
    if len(text) <= 2 * keep:
        return text
    return f"{text[:keep]}\n... ({len(text) - 2 * keep} characters omitted) ...\n{text[-keep:]}"


def render_diagnostic(d: Diagnostic, files: dict[str, str]) -> str:
    loc = d.location()
    msg = trim(clean(_ends(d.message)))
    if d.kind is Kind.timeout:
        msg += ("\nThe code probably loops forever, deadlocks or waits on something that "
                "never happens.")
    head = f"{_heading(d)}" + (f" at {loc}" if loc else "") + ":"
    body = "\n".join("    " + ln for ln in msg.splitlines())
    ctx = source_context(files, d)
    case = failing_case(files, d)
    return head + "\n" + body + "".join("\n" + x for x in (ctx, case) if x)


def render_feedback(result: CheckResult, files: dict[str, str]) -> tuple[str, int]:
    """Feedback text and how many problems it names.

    `files` are all Go files of the run (solution and the tests the model may see), for
    source context. Compile problems come first: while the package does not build, test
    results do not exist.
    """
    diags = list(result.diagnostics)
    if not diags and not result.passed:
        diags = [Diagnostic(message="the tests did not pass", kind=Kind.test_failure)]
    build = [d for d in diags if d.kind in (Kind.compile, Kind.vet, Kind.toolchain)]
    chosen = build[:MAX_DIAGNOSTICS] if build else []
    if not chosen:
        tests = [d for d in diags if d.kind in (Kind.test_failure, Kind.panic)]
        other = [d for d in diags if d.kind not in (Kind.test_failure, Kind.panic)]
        chosen = other[:2] + tests[:MAX_TESTS]
    parts = [render_diagnostic(d, files) for d in chosen]
    more = len(diags) - len(chosen)
    if more > 0:
        parts.append(f"({more} more problem{'s' if more > 1 else ''} not shown)")
    if result.tests and not build:
        npass = sum(t.outcome.value == "pass" for t in result.tests if "/" not in t.name)
        ntotal = sum(1 for t in result.tests if "/" not in t.name)
        parts.insert(0, f"{npass} of {ntotal} tests passed.")
    return cut("\n\n".join(parts), MAX_FEEDBACK_CHARS), len(chosen)


def summary_line(result: CheckResult) -> str:
    """A one-line description of a round's outcome, for the short history."""
    if result.passed:
        return "passed"
    if not result.diagnostics:
        return "failed"
    d = result.diagnostics[0]
    first = (clean(d.message[:2000]).splitlines() or [""])[0][:120]
    loc = f" ({d.location()})" if d.location() else ""
    extra = len(result.diagnostics) - 1
    tail = f" (+{extra} more)" if extra > 0 else ""
    head = _heading(d)
    return f"{head[0].lower()}{head[1:]}{loc}: {first}{tail}"
