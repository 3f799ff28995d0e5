"""What a toolchain run found, as data: the one diagnostics type every driver shares."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field


class Kind(str, Enum):
    compile = "compile"
    vet = "vet"
    test_failure = "test-failure"
    panic = "panic"
    timeout = "timeout"
    format = "format"
    limit = "limit"  # output, memory or process limit hit: the sandbox stopped the run
    toolchain = "toolchain"  # the go command itself failed (bad go.mod, missing module)


class Diagnostic(BaseModel):
    file: str | None = None
    line: int | None = None
    column: int | None = None
    message: str
    kind: Kind
    test: str | None = None  # the test it belongs to, for test failures and panics

    def key(self) -> tuple:
        return (self.kind, self.file, self.line, self.column, self.message, self.test)

    def location(self) -> str:
        if not self.file:
            return ""
        loc = self.file
        if self.line:
            loc += f":{self.line}"
            if self.column:
                loc += f":{self.column}"
        return loc

    def __str__(self) -> str:
        loc = self.location()
        return f"{loc}: {self.message}" if loc else self.message


class Outcome(str, Enum):
    passed = "pass"
    failed = "fail"
    skipped = "skip"


class TestResult(BaseModel):
    __test__ = False  # not a pytest class

    name: str
    outcome: Outcome
    output: str = ""
    seconds: float = 0.0


class CoverBlock(BaseModel):
    """One block of `go test -coverprofile`: its lines and how often it ran."""

    file: str  # as the profile names it: import path / file name
    start: int
    end: int
    count: int


class CheckResult(BaseModel):
    passed: bool
    built: bool = True
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    tests: list[TestResult] = Field(default_factory=list)
    log: str = ""  # raw toolchain output, capped
    seconds: float = 0.0
    timed_out: bool = False
    exit_code: int | None = None
    coverage: list[CoverBlock] = Field(default_factory=list)  # only when asked for

    @property
    def failed_tests(self) -> list[TestResult]:
        return [t for t in self.tests if t.outcome is Outcome.failed]

    def first_failure_kind(self) -> Kind | None:
        return self.diagnostics[0].kind if self.diagnostics else None

    def signature(self) -> str:
        """A stable fingerprint of what went wrong, for stuck detection."""
        parts = sorted(f"{d.kind.value}|{d.file}|{d.line}|{d.message}" for d in self.diagnostics)
        return "\n".join(parts)

    def public(self) -> dict:
        """The `check --json` shape."""
        return {
            "passed": self.passed,
            "diagnostics": [
                d.model_dump(mode="json", include={"file", "line", "column", "message", "kind"})
                for d in self.diagnostics
            ],
            "tests": [{"name": t.name, "outcome": t.outcome.value} for t in self.tests],
            "seconds": round(self.seconds, 3),
        }


def dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple] = set()
    out: list[Diagnostic] = []
    for d in diags:
        k = d.key()
        if k not in seen:
            seen.add(k)
            out.append(d)
    return out
