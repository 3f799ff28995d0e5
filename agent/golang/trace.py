"""What the code did in a failing test, from Go's own coverage profile.

`got X, want Y` tells a small model that its code is wrong, not where. Run the failing
test once more with `-coverprofile` and the profile says which blocks ran: the `return`
the call came back from (with the `if` or `case` that led there), and the branches that
never ran. Those are the places to look, stated as lines of the model's own code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.golang.source import decl_starts, strip_comments
from tools.diagnostics import CoverBlock

MAX_RETURNS = 3
MAX_SPANS = 4  # a long list of error branches that never ran is noise
_RETURN = re.compile(r"^return\b")
_BRANCH = re.compile(r"^(?:\}\s*else\b.*\{|if\b.*\{|for\b.*\{|case\b.*:|default\s*:|switch\b.*\{)$")


@dataclass(frozen=True)
class Trace:
    test: str
    returned: list[str]  # "line 14: `return "", err` (2 times), under line 13: `if …`"
    unrun: list[str]  # "in ConvertBase, lines 16-40 never ran"
    values: list[str] = field(default_factory=list)  # "line 12: `n := a % 60` → n = 15"

    def lines(self) -> list[str]:
        return [*self.returned, *self.unrun]


def _owner(blocks: list[CoverBlock], name: str) -> list[CoverBlock]:
    """The profile's blocks of one of our files (the profile names it by import path)."""
    return [b for b in blocks if b.file == name or b.file.endswith("/" + name)]


def functions(src: str) -> list[tuple[str, int, int]]:
    """(name, first line, last line), 1-based, of each function declaration."""
    return [(d.name, start + 1, start + 1 + d.text.rstrip("\n").count("\n"))
            for start, d in decl_starts(src) if d.kind == "func" and d.name and not d.is_test]


def _ranges(lines: list[int], code: list[str]) -> str:
    """`12-18, 21`: runs of consecutive lines, leaving out runs of only braces."""
    spans: list[list[int]] = []
    for n in sorted(lines):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    spans = [s for s in spans if any(code[n - 1] not in ("", "}") for n in range(s[0], s[1] + 1))]
    shown = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans[:MAX_SPANS])
    return shown + (", …" if len(spans) > MAX_SPANS else "")


def ran_lines(files: dict[str, str], blocks: list[CoverBlock]) -> dict[str, set[int]]:
    """File → the lines of its functions that ran at least once (not test files)."""
    out: dict[str, set[int]] = {}
    for name, src in files.items():
        if name.endswith("_test.go") or not name.endswith(".go"):
            continue
        last = src.count("\n") + 1
        ran = {n for b in _owner(blocks, name) if b.count
               for n in range(b.start, min(b.end, last) + 1)}
        if ran:
            out[name] = ran
    return out


def enclosing_lines(files: dict[str, str], spots: list[tuple[str, int]]) -> dict[str, set[int]]:
    """File → every line of the functions that hold one of `spots` (file, line): where
    a panic's test left no coverage profile, the functions its stack names."""
    out: dict[str, set[int]] = {}
    for name, src in files.items():
        if name.endswith("_test.go") or not name.endswith(".go"):
            continue
        at = {n for f, n in spots if f == name or f.endswith("/" + name)}
        for _, first, last in functions(src):
            if any(first <= n <= last for n in at):
                out.setdefault(name, set()).update(range(first, last + 1))
    return out


def describe(files: dict[str, str], blocks: list[CoverBlock], test: str) -> Trace | None:
    """Where the code went in `test`: the returns that ran and the lines that did not,
    in the functions the test reached. None when the profile says nothing usable."""
    returned: list[str] = []
    unrun: list[str] = []
    for name, src in sorted(files.items()):
        if name.endswith("_test.go") or not name.endswith(".go"):
            continue
        mine = _owner(blocks, name)
        if not mine:
            continue
        lines = src.split("\n")
        code = [strip_comments(ln).strip() for ln in lines]
        ran: dict[int, int] = {}  # line → most runs of a block covering it
        seen: set[int] = set()
        for b in mine:
            for n in range(b.start, min(b.end, len(lines)) + 1):
                seen.add(n)
                ran[n] = max(ran.get(n, 0), b.count)
        for fname, first, last in functions(src):
            body = [n for n in range(first, last + 1) if n in seen]
            if not any(ran[n] for n in body):
                continue  # the test never called it
            for n in body:
                if ran[n] and _RETURN.match(code[n - 1]) and len(returned) < MAX_RETURNS:
                    returned.append(_returned_at(n, lines, code, mine))
            if dark := _ranges([n for n in body if not ran[n]], code):
                unrun.append(f"in {fname}, line{'s' if '-' in dark or ',' in dark else ''} "
                             f"{dark} never ran")
    if not returned and not unrun:
        return None
    return Trace(test=test, returned=returned, unrun=unrun[:MAX_RETURNS])


def _returned_at(n: int, lines: list[str], code: list[str], blocks: list[CoverBlock]) -> str:
    # The innermost block that ran and holds the return begins at, or just after, the
    # `{` or `case …:` of the branch that led to it.
    holders = [b for b in blocks if b.count and b.start <= n <= b.end]
    inner = min(holders, key=lambda b: b.end - b.start) if holders else None
    times = max((b.count for b in holders), default=1)
    out = f"line {n}: `{lines[n - 1].strip()}`"
    if times > 1:
        out += f" ({times} times)"
    if inner is not None:
        for at in (inner.start, inner.start - 1):
            if 0 < at < n and _BRANCH.match(code[at - 1]):
                return out + f", under line {at}: `{lines[at - 1].strip()}`"
    return out
