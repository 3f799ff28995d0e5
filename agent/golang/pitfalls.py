"""Go rules that code passing its examples often breaks on other inputs, found in the code.

When the examples pass and other tests fail, the usual cause in a small model's Go is one
of a handful of language rules that a typical example never exercises: `%` keeps the sign
of its left operand, `len` and indexing of a string count bytes, `-n` overflows for the
most negative integer, a slice expression or `append` shares the input's array, and an
integer that overflows wraps around instead of passing its type's bound.
Each rule here is the language's, never a task's; a finding names the line it was seen
on, so the model can check that line against the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from agent.golang.source import decl_starts, strip_comments

_STRING_LIT = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|\'(?:[^\'\\\n]|\\.)+\'')
_PARAMS = re.compile(r"^func\s*(?:\([^)]*\)\s*)?\w+\s*(?:\[[^\]]*\])?\s*\((?P<params>[^)]*)\)")
_MOD = re.compile(r"[\w)\]]\s*%=?\s*[\w(]")
# A task that measures in bytes ("byte offsets", "length in bytes") makes len(s) and
# s[i] right; "runes, not bytes" does not match.
_BYTE_UNIT = re.compile(r"\bbyte[- ](?:index|indices|indexes|offsets?|positions?)\b|"
                        r"(?<!not )\b(?:in|of) bytes\b", re.IGNORECASE)


@dataclass(frozen=True)
class Pitfall:
    rule: str  # which rule (one finding per rule)
    line: int
    code: str  # the line, trimmed
    why: str

    def text(self) -> str:
        return f"line {self.line}: `{self.code}`: {self.why}"


def _names_of(params: str, typ: str) -> set[str]:
    """Parameter names declared with exactly `typ` (`a, b int` gives a and b)."""
    out: set[str] = set()
    pending: list[str] = []
    for part in (p.strip() for p in params.split(",")):
        words = part.split()
        if len(words) == 1:
            pending.append(words[0])
            continue
        if len(words) >= 2:
            if " ".join(words[1:]).replace(" ", "") == typ:
                out.update([*pending, words[0]])
            pending = []
    return out


_Check = Callable[[str, dict[str, set[str]]], str | None]


def _modulo(code: str, names: dict[str, set[str]]) -> str | None:
    if _MOD.search(code):
        return ("in Go, a % b takes the sign of a (-7 % 26 is -7, not 19). Where a can be "
                "negative and the result must lie in 0..b-1, write ((a % b) + b) % b.")
    return None


def _bytes(code: str, names: dict[str, set[str]]) -> str | None:
    for s in names["string"]:
        if re.search(rf"\blen\({s}\)", code):
            return (f"len({s}) counts bytes, not characters ('é' is 2 bytes, '日' is 3). "
                    f"To count characters use utf8.RuneCountInString({s}) or len([]rune({s})).")
        if re.search(rf"(?<![\w.]){s}\[[^\]:]+\]", code):
            return (f"{s}[i] is one byte, and a non-ASCII character spans several. Range "
                    f"over the string (for i, r := range {s}) or index []rune({s}).")
    return None


def _negate(code: str, names: dict[str, set[str]]) -> str | None:
    for n in names["int"] | names["int64"]:
        if re.search(rf"(?<![\w)\]])-\s*{n}\b(?!\s*[\[(.])|\b{n}\s*\*=\s*-1\b", code):
            return (f"-{n} overflows when {n} is the most negative value (math.MinInt64 "
                    "stays negative). If that value is allowed, handle it, e.g. take digits "
                    f"with {n} % 10 and negate each, or convert to uint64 first.")
    return None


def _aliasing(code: str, names: dict[str, set[str]]) -> str | None:
    for xs in names["slice"]:
        if re.search(rf"\bappend\(\s*{xs}\s*\[|\breturn\s+{xs}\s*(\[[^\]]*:[^\]]*\])?\s*$",
                     code):
            return (f"{xs}[a:b] and append({xs}[a:b], …) share {xs}'s array: writing to the "
                    f"result changes {xs}. When the result must be a new slice, make one "
                    f"(make([]T, len({xs}))) and copy into it.")
    return None


# A 64-bit integer compared past its own type's bound: the comparison is always false,
# since overflow wraps instead of exceeding the bound.
_END = r"(?=\s*(?:$|[)&|{;,]))"  # the bound is the whole operand, not `MaxInt64-b`
_START = r"(?:^|[(&|!;=]|\bif|\breturn)\s*"
_PAST_BOUND = re.compile(
    rf"(?<![<>=!])>\s*math\.Max(?:Int|Int64|Uint|Uint64){_END}|"
    rf"(?<![<>=!])<\s*math\.Min(?:Int|Int64){_END}|"
    rf"{_START}math\.Max(?:Int|Int64|Uint|Uint64)\s*<(?![<=-])|"
    rf"{_START}math\.Min(?:Int|Int64)\s*>(?![>=])")


def _bound(code: str, names: dict[str, set[str]]) -> str | None:
    if _PAST_BOUND.search(code):
        return ("an int or int64 is never above math.MaxInt64 or below math.MinInt64: a "
                "sum or product that overflows wraps around silently (math.MaxInt64 + 1 "
                "is math.MinInt64), so on an integer this comparison is always false. "
                "Check before the operation, e.g. for a + b: (b > 0 && a > math.MaxInt64-b)"
                " || (b < 0 && a < math.MinInt64-b) means it overflows.")
    return None


# Rules whose finding is a bug whatever the task asks (an always-false comparison), so
# worth saying after any failing test, not only once the examples pass.
CERTAIN = frozenset({"bound"})

_CHECKS: list[tuple[str, _Check]] = [
    ("modulo", _modulo), ("bytes", _bytes), ("negate", _negate), ("aliasing", _aliasing),
    ("bound", _bound)]


def find(files: dict[str, str], limit: int = 3, goal: str = "",
         rules: frozenset[str] | None = None) -> list[Pitfall]:
    """At most one finding per rule (its first line), in the non-test files' functions.
    `goal` is the task's text: where it counts in bytes, the bytes rule is no pitfall.
    `rules` keeps only those rules (all when None)."""
    checks = [(r, c) for r, c in _CHECKS if (r != "bytes" or not _BYTE_UNIT.search(goal))
              and (rules is None or r in rules)]
    found: dict[str, Pitfall] = {}
    for name, src in sorted(files.items()):
        if name.endswith("_test.go"):
            continue
        lines = src.split("\n")
        for decl_start, decl in decl_starts(src):
            if decl.kind != "func" or decl.is_test:
                continue
            m = _PARAMS.match(strip_comments(decl.text).lstrip())
            params = m["params"] if m else ""
            names = {t: _names_of(params, t) for t in ("string", "int", "int64")}
            names["slice"] = set(re.findall(r"(\w+)\s+\[\]", params))
            for i in range(decl_start, decl_start + decl.text.count("\n") + 1):
                if i >= len(lines):
                    break
                code = _STRING_LIT.sub('""', lines[i].split("//", 1)[0]).strip()
                if not code or code.startswith("func "):
                    continue
                for rule, check in checks:
                    if rule in found:
                        continue
                    if (why := check(code, names)) is not None:
                        found[rule] = Pitfall(rule=rule, line=i + 1, code=lines[i].strip(),
                                              why=why)
    return list(found.values())[:limit]

