"""`bench verify`: prove a suite's tests can tell right from wrong before trusting a benchmark.

For every task, the reference must pass all of its tests (visible and hidden), and a
trivially wrong solution — the reference with every function body replaced by
`return <zero values>` — must fail them; so must an edit task's starter (buggy) files.
A task that fails a check would corrupt a benchmark: a broken test fails every model, a
weak one passes every model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from pydantic import BaseModel, Field

from agent.golang.fixes import AppliedFix, apply_fixes, fix_imports_source
from agent.golang.tokens import Token, tokenize
from agent.tasks.harness import HIDDEN_TEST, VISIBLE_TEST, Suite, TaskHarness
from agent.tasks.spec import TaskSpec
from tools.diagnostics import CheckResult, Kind
from tools.go import ToolchainError

MAX_FIX_ROUNDS = 3  # the compiler reports at most 10 errors a run, so fixes come in waves
_IMPORT_FIXES = ("unused-imports", "missing-imports")
_INT_TYPES = {"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16",
              "uint32", "uint64", "uintptr", "byte", "rune", "float32", "float64",
              "complex64", "complex128"}


class TaskVerification(BaseModel):
    """What verification found for one task."""

    task: str
    ok: bool
    reference_passed: bool | None = None  # None: not run (no reference, or an error)
    wrong_failed: bool | None = None  # the trivially wrong solution failed the tests
    wrong_built: bool | None = None  # False: it failed by not compiling (weaker evidence)
    starter_failed: bool | None = None  # edit tasks: the buggy starter files fail the tests
    problem: str | None = None  # one line saying what is wrong, when not ok
    details: list[str] = Field(default_factory=list)  # first diagnostics, for the user
    fixes: list[AppliedFix] = Field(default_factory=list)  # import fixes needed to pass
    seconds: float = 0.0


class SuiteVerification(BaseModel):
    suite: str
    tasks: list[TaskVerification]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tasks)

    @property
    def failures(self) -> list[TaskVerification]:
        return [t for t in self.tasks if not t.ok]

    def public(self) -> dict:
        """The `bench verify --json` shape."""
        return {"suite": self.suite, "ok": self.ok, "tasks": len(self.tasks),
                "failed": len(self.failures),
                "results": [t.model_dump(mode="json") for t in self.tasks]}


# -- the trivially wrong solution ---------------------------------------------------------

def _match(toks: list[Token], i: int) -> int:
    """Index of the bracket closing the one at `i` (or the last token if unbalanced)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = [pairs[toks[i].text]]
    j = i + 1
    while j < len(toks) and stack:
        t = toks[j].text
        if toks[j].kind == "op":
            if t in pairs:
                stack.append(pairs[t])
            elif stack and t == stack[-1]:
                stack.pop()
        j += 1
    return j - 1


def _split_top(toks: list[Token], sep: str = ",") -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for t in toks:
        if t.kind == "op" and t.text in "([{":
            depth += 1
        elif t.kind == "op" and t.text in ")]}":
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text == sep:
            parts.append([])
        else:
            parts[-1].append(t)
    return [p for p in parts if p]


def _zero(src: str, typ: list[Token]) -> str:
    text = src[typ[0].start:typ[-1].end]
    if len(typ) == 1:
        if text in _INT_TYPES:
            return "0"
        if text == "string":
            return '""'
        if text == "bool":
            return "false"
        if text in ("error", "any"):
            return "nil"
    # `*new(T)` is the zero value of any type, named, generic or literal.
    return f"*new({text})"


def _ends_statement(src: str, prev: Token, tok: Token) -> bool:
    """Go's semicolon rule: a newline after an identifier, literal or closing bracket
    ends the statement — so a signature followed by a new line has no body."""
    return "\n" in src[prev.end:tok.start] and (
        prev.kind in ("ident", "number", "string") or prev.text in (")", "]", "}"))


def _is_named(field: list[Token]) -> bool:
    """`n int` or `xs []int` (a named result), as opposed to `pkg.T`, `T[int]`, `chan T`."""
    if len(field) < 2 or field[0].kind != "ident":
        return False
    if field[0].text in ("chan", "func", "map", "struct", "interface"):
        return False
    second = field[1].text
    if second == ".":
        return False
    if second == "[":  # `xs []int` or `a [3]int` is named; `T[int]` is a generic type
        return len(field) > 2 and (field[2].text == "]" or field[2].kind == "number")
    return True


def _body_for(src: str, result: list[Token]) -> str:
    """The body of a function that returns zero values of its result types."""
    if not result:
        return "{}"
    if result[0].text != "(" or _match(result, 0) != len(result) - 1:
        return "{\n\treturn " + _zero(src, result) + "\n}"
    fields = _split_top(result[1:-1])
    if not fields:
        return "{}"
    # Named results (`(n int, err error)`): a bare return yields their zero values.
    if any(_is_named(f) for f in fields):
        return "{\n\treturn\n}"
    return "{\n\treturn " + ", ".join(_zero(src, f) for f in fields) + "\n}"


def zero_value_source(src: str) -> str:
    """`src` with every top-level function body replaced by `return <zero values>`.

    Types, constants and variables stay, so the file still declares what the tests use.
    Imports the bodies needed become unused; callers remove them with the import fixer.
    """
    toks = tokenize(src)
    edits: list[tuple[int, int, str]] = []
    depth = 0
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "op" and t.text in "([{":
            depth += 1
        elif t.kind == "op" and t.text in ")]}":
            depth -= 1
        if depth != 0 or t.text != "func" or t.kind != "ident":
            i += 1
            continue
        j = i + 1
        if j < len(toks) and toks[j].text == "(":  # method receiver
            j = _match(toks, j) + 1
        if j >= len(toks) or toks[j].kind != "ident":
            i += 1
            continue
        j += 1
        if j < len(toks) and toks[j].text == "[":  # type parameters
            j = _match(toks, j) + 1
        if j >= len(toks) or toks[j].text != "(":
            i += 1
            continue
        j = _match(toks, j) + 1  # past the parameters
        # The result runs to the body's `{`; a `{` right after struct/interface belongs to
        # a type literal in the result, not to the body.
        k = j
        while k < len(toks):
            tk = toks[k]
            if tk.text in ("(", "["):
                k = _match(toks, k) + 1
                continue
            if tk.text == "{":
                if k > 0 and toks[k - 1].text in ("struct", "interface"):
                    k = _match(toks, k) + 1
                    continue
                break
            if tk.text == ";" or (k > j and _ends_statement(src, toks[k - 1], tk)):
                k = -1  # a declaration without a body (assembly stub): leave it
                break
            k += 1
        if k < 0 or k >= len(toks):
            i = j
            continue
        end = _match(toks, k)
        edits.append((toks[k].start, toks[end].end, _body_for(src, toks[j:k])))
        i = end + 1
    for start, end, text in reversed(edits):
        src = src[:start] + text + src[end:]
    return src


def zero_value_solution(files: dict[str, str]) -> dict[str, str]:
    """A trivially wrong solution: every function returns zero values; imports tidied."""
    out: dict[str, str] = {}
    for name, src in files.items():
        blank = zero_value_source(src)
        out[name], _ = fix_imports_source(blank, name)
    return out


# -- checking -----------------------------------------------------------------------------

def _summarize(result: CheckResult, limit: int = 3) -> list[str]:
    lines = [str(d).splitlines()[0] if str(d) else d.kind.value
             for d in result.diagnostics[:limit]]
    if not lines and not result.passed:
        lines = ["failed without diagnostics"]
    return lines


def _check_with_import_fixes(h: TaskHarness, files: dict[str, str]
                             ) -> tuple[CheckResult, dict[str, str], TaskSpec, list[AppliedFix]]:
    """Check `files`; while the build fails on imports, fix them (solution and tests alike).

    Returns the last result, the fixed solution, the task with fixed tests, and the fixes.
    """
    task = h.task
    fixes: list[AppliedFix] = []
    result = h.check(files, Suite.all)
    for _ in range(MAX_FIX_ROUNDS):
        if result.built or not any(d.kind is Kind.compile for d in result.diagnostics):
            break
        tests = {HIDDEN_TEST: task.hidden_test_file()}
        visible = task.visible_test_file()
        if visible:
            tests[VISIBLE_TEST] = visible
        new, applied = apply_fixes({**files, **tests}, result.diagnostics, _IMPORT_FIXES)
        if not applied:
            break
        fixes += applied
        files = {k: new[k] for k in files}
        task = task.model_copy(update={
            "tests": new[HIDDEN_TEST],
            "visible_tests": new.get(VISIBLE_TEST, task.visible_tests)})
        h.task = task
        result = h.check(files, Suite.all)
    return result, files, task, fixes


def verify_task(task: TaskSpec) -> TaskVerification:
    """Check one task's reference and its trivially wrong solution."""
    start = time.monotonic()
    reference = task.reference_solution()
    if not reference:
        return TaskVerification(task=task.id, ok=False, problem="the task has no reference")
    v = TaskVerification(task=task.id, ok=False)
    with TaskHarness(task) as h:
        ref, ref_files, _, v.fixes = _check_with_import_fixes(h, reference)
        v.reference_passed = ref.passed
        if not ref.passed:
            v.problem = ("the reference does not build" if not ref.built
                         else "the reference fails its tests")
            v.details = _summarize(ref)
        else:
            wrong, _, _, _ = _check_with_import_fixes(h, zero_value_solution(ref_files))
            v.wrong_failed = not wrong.passed
            v.wrong_built = wrong.built
            if wrong.passed:
                v.problem = "a solution returning zero values passes every test"
            elif not wrong.built:
                v.details = ["zero-value solution did not build: "
                             + "; ".join(_summarize(wrong, 2))]
            if task.files:
                # An edit task whose buggy files already pass asks for nothing.
                v.starter_failed = not h.check(dict(task.files), Suite.all).passed
                if not v.starter_failed and v.problem is None:
                    v.problem = "the starter files (the code to fix) already pass every test"
    v.ok = bool(v.reference_passed and v.wrong_failed and v.starter_failed is not False)
    v.seconds = time.monotonic() - start
    return v


def verify_tasks(
    tasks: Iterable[TaskSpec],
    *,
    suite: str = "",
    workers: int = 2,
    on_result: Callable[[TaskVerification], None] | None = None,
) -> SuiteVerification:
    """Verify tasks on a small thread pool (the Go toolchain is the bottleneck).

    Results come back in the suite's order; `on_result` is called as each task finishes.
    """
    task_list = list(tasks)

    def one(t: TaskSpec) -> TaskVerification:
        try:
            r = verify_task(t)
        except ToolchainError:
            raise  # no toolchain: nothing can be verified, the caller says how to fix it
        except Exception as exc:  # one broken task must not hide the others
            r = TaskVerification(task=t.id, ok=False, problem=f"verification crashed: {exc}")
        if on_result:
            on_result(r)
        return r

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(one, task_list))
    return SuiteVerification(suite=suite, tasks=results)
