"""One-token changes to the lines a failing test ran, for the toolchain to try.

Small models miss by one more often than by an idea: `<` where `<=` was meant, a
bound one too far, a 0-based page taken as 1-based. Told `got 10 want 0`, they rarely
find the token; the toolchain can try each candidate in well under a second. This is
mutation-based program repair in its plainest form: a change is kept only when every test
the loop may see passes with it (agent/loop/repair.py), so it can turn a failing answer
into a passing one and never into a worse one.

Only lines that ran in the tests are changed, by kind of slip, most common first:
comparison bounds, then integer constants and names one off, then a comparison or
condition turned round (`==`/`!=`, `<`/`>`, `&&`/`||`, `true`/`false`, `min`/`max`), then
`+`/`-`. Strings, runes and comments are tokens of their own and never changed.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from agent.golang.tokens import Token, tokenize

MAX_MUTANTS = 48  # at about 0.7 s a check on this machine: half a minute at most

_BOUNDS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}
_FLIPS = {"==": "!=", "!=": "==", "&&": "||", "||": "&&", "<": ">", ">": "<", "<=": ">=",
          ">=": "<=", "true": "false", "false": "true", "min": "max", "max": "min"}
_TWO = {"<=", ">=", "==", "!=", "&&", "||", ":=", "+=", "-=", "*=", "/=", "%=", "++", "--",
        "<<", ">>", "<-", "&^", "|=", "&=", "^="}
# Names a ±1 can never make sense of, and those whose change a test cannot tell apart.
_NOT_NUMBERS = {"true", "false", "nil", "iota", "len", "cap", "append", "make", "new", "copy",
                "string", "byte", "rune", "int", "int64", "int32", "uint", "float64", "err",
                "ok"}
_KEYWORDS = {"break", "case", "chan", "const", "continue", "default", "defer", "else",
             "fallthrough", "for", "func", "go", "goto", "if", "import", "interface", "map",
             "package", "range", "return", "select", "struct", "switch", "type", "var"}
# An operand next to one of these takes part in arithmetic, a comparison or an index.
_NUMERIC_CONTEXT = {"+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "[", "]", ":"}


@dataclass(frozen=True)
class Mutant:
    file: str
    line: int  # 1-based
    before: str  # the line as written
    after: str  # the line changed
    source: str  # the whole file, changed

    def text(self) -> str:
        return f"{self.file} line {self.line}: `{self.before.strip()}` → `{self.after.strip()}`"


def _ops(toks: list[Token], src: str) -> list[Token]:
    """The tokens with two-character operators joined (the tokenizer splits them)."""
    out: list[Token] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if (t.kind == "op" and i + 1 < len(toks) and toks[i + 1].start == t.end
                and src[t.start:t.end + 1] in _TWO):
            out.append(Token("op", src[t.start:t.end + 1], t.start, t.end + 1))
            i += 2
            continue
        out.append(t)
        i += 1
    return out


def _line_of(src: str) -> list[int]:
    """Offset → 1-based line, as a table of line starts."""
    starts = [0]
    starts += [i + 1 for i, c in enumerate(src) if c == "\n"]
    return starts


def _changes(toks: list[Token], i: int) -> Iterator[tuple[int, str]]:
    """(rank, replacement) for token i: lower ranks are the likelier slips."""
    t = toks[i]
    prev = toks[i - 1].text if i else ""
    nxt = toks[i + 1].text if i + 1 < len(toks) else ""
    if t.kind == "op" and t.text in _BOUNDS:
        yield 0, _BOUNDS[t.text]
    elif t.kind == "number" and t.text.isdigit() and len(t.text) < 7:
        n = int(t.text)
        yield 1, str(n + 1)
        if n > 0:
            yield 1, str(n - 1)
    elif (t.kind == "ident" and t.text not in _NOT_NUMBERS | _KEYWORDS
          and prev not in (".", "func")
          and nxt not in ("(", ".", "{", ":=", "=", ",")
          and (prev in _NUMERIC_CONTEXT or nxt in _NUMERIC_CONTEXT)):
        yield 2, f"({t.text} - 1)"
        yield 2, f"({t.text} + 1)"
    if t.text in _FLIPS and prev != "." and (t.kind == "op" or nxt != ":="):
        yield 3, _FLIPS[t.text]
    elif (t.kind == "op" and t.text in ("+", "-") and i and (  # binary, not a sign
            (toks[i - 1].kind in ("ident", "number") and prev not in _KEYWORDS)
            or prev in (")", "]"))):
        yield 4, "-" if t.text == "+" else "+"


def mutants(files: dict[str, str], lines: dict[str, set[int]],
            limit: int = MAX_MUTANTS) -> list[Mutant]:
    """One-token changes on `lines` (file → 1-based lines that ran), likeliest first.
    A line's declarations and loop posts (`i := 0`, `i++`) keep their left-hand side: a
    changed name there would be a new variable, not a slip."""
    found: list[tuple[int, int, Mutant]] = []
    for name in sorted(lines):
        src = files.get(name)
        if src is None:
            continue
        starts = _line_of(src)
        toks = _ops(tokenize(src), src)
        for i, t in enumerate(toks):
            line = bisect_right(starts, t.start)
            if line not in lines[name]:
                continue
            for rank, new in _changes(toks, i):
                out = src[:t.start] + new + src[t.end:]
                a, b = starts[line - 1], src.find("\n", t.start)
                b = len(src) if b < 0 else b
                changed = src[a:t.start] + new + src[t.end:b]
                found.append((rank, len(found),
                              Mutant(name, line, src[a:b], changed, out)))
    found.sort(key=lambda f: (f[0], f[1]))
    return [m for _, _, m in found[:limit]]

