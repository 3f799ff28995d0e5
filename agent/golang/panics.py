"""What a Go runtime panic means, in the words a small model can act on.

`panic: runtime error: slice bounds out of range [:6] with capacity 5` names the fault but
not the rule broken; given only that message, the 0.5B hit the same fault four rounds
running. Each rule here is the language's (the Go spec and runtime), never a
task's: the explanation says which rule, with the numbers the panic gave.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from tools.diagnostics import Diagnostic, Kind

_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]

_RULES: list[_Rule] = [
    (re.compile(r"index out of range \[(?P<i>-?\d+)\] with length (?P<n>\d+)"),
     lambda m: (f"the index {m['i']} is outside 0..{int(m['n']) - 1} (length {m['n']}): "
                "valid indexes run from 0 to len-1; check the loop bounds and empty input "
                "before indexing." if m["n"] != "0" else
                f"the index {m['i']} was used on an empty slice or string (length 0): "
                "handle empty input before indexing.")),
    (re.compile(r"index out of range \[(?P<i>-\d+)\]"),
     lambda m: (f"the index {m['i']} is below 0: an index computed as len(s)-k or i-1 "
                "goes negative on short or empty input; check the length first.")),
    (re.compile(r"slice bounds out of range \[(?P<lo>-?\d*):(?P<hi>-?\d+)\] with "
                r"(?P<what>capacity|length) (?P<n>\d+)"),
     lambda m: (f"a slice expression s[{m['lo']}:{m['hi']}] needs its end at most "
                f"len(s) ({m['what']} {m['n']} here): clamp the end, e.g. "
                "`end := min(start+size, len(s))`, and stop the loop at len(s).")),
    (re.compile(r"slice bounds out of range \[(?:(?P<lo>-\d+):|:(?P<hi>-\d+))\]"),
     lambda m: (f"a slice bound was {m['lo'] or m['hi']}, below 0: a bound computed as "
                "len(s)-k or i-1 goes negative on short or empty input; check the length "
                "before slicing.")),
    (re.compile(r"slice bounds out of range \[(?P<lo>-?\d+):(?P<hi>-?\d+)\]"),
     lambda m: (f"a slice expression s[{m['lo']}:{m['hi']}] needs 0 <= start <= end: "
                "the start is past the end here.")),
    (re.compile(r"assignment to entry in nil map"),
     lambda m: ("a map must be created (`make(map[K]V)` or a literal) before storing into "
                "it; a declared `var m map[K]V` is nil.")),
    (re.compile(r"invalid memory address or nil pointer dereference"),
     lambda m: ("a nil pointer was used (a field or method through it): check for nil "
                "first, or create the value before using it.")),
    (re.compile(r"integer divide by zero"),
     lambda m: "an integer division or % by zero: handle a zero divisor before dividing."),
    (re.compile(r"all goroutines are asleep - deadlock"),
     lambda m: ("every goroutine was blocked: a channel send or receive with no partner, "
                "an unbuffered send before its receiver starts, or a WaitGroup or mutex "
                "never released.")),
    (re.compile(r"send on closed channel|close of closed channel"),
     lambda m: ("a channel was used after close: only the sender closes it, exactly "
                "once, after its last send.")),
    (re.compile(r"concurrent map (?:writes|read and map write)"),
     lambda m: ("a map was used by several goroutines at once: guard it with a "
                "sync.Mutex or give each goroutine its own.")),
]


def explain(diagnostics: Iterable[Diagnostic], limit: int = 2) -> list[str]:
    """One sentence per distinct runtime fault among the panics, at most `limit`."""
    out: list[str] = []
    for d in diagnostics:
        if d.kind is not Kind.panic or not d.message:
            continue
        said = rule(d.message)
        if said is not None and (text := "The panic means " + said) not in out:
            out.append(text)
        if len(out) >= limit:
            break
    return out


def rule(message: str) -> str | None:
    """The rule a panic message says was broken (a sentence), if it is one of ours."""
    for pattern, say in _RULES:
        if (m := pattern.search(message[:4000])) is not None:
            return say(m)
    return None
