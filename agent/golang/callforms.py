"""Calls written in a form the standard library or the answer's own code does not have.

Small models write calls from other Go code they have seen, and repeat them every round
whatever they are told (the 0.5B wrote `errors.Wrap` in four rounds running, with the
fact "package errors has no function Wrap" in front of it). Each form below has one
standard-library or own-code reading:

- `errors.Wrap(err, msg)`, `errors.Wrapf(err, format, args…)` and their `WithMessage`
  spellings (github.com/pkg/errors, which a stdlib-only answer cannot import) wrap with
  `fmt.Errorf("…: %w", …, err)`; `errors.Errorf` is `fmt.Errorf`;
- a call with more arguments than the answer's own two-parameter function takes, where
  both parameters and the result are of one type (`min(a, b, c)` against its own
  `func min(x, y int) int`), is folded: `min(min(a, b), c)`.

The compiler's message names each (`undefined: errors.Wrap`, `too many arguments in call
to min`); the edit applies only where the source holds that call, and, as for every
compiler fix, is kept only if the file still parses and (never-worse) the check improves.
The imports the rewrite needs (`fmt`) or leaves unused (`errors`) are settled by
`fixes.apply_fixes` in the same pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agent.golang.tokens import Token, tokenize
from agent.golang.typefixes import Edit, byte_offset
from agent.golang.valueforms import call_open
from tools.diagnostics import Diagnostic

FIX = "call-forms"

_WRAP_RE = re.compile(r"^undefined: errors\.(?P<name>Wrapf?|WithMessagef?|Errorf)$")
_TOO_MANY_RE = re.compile(r"^too many arguments in call to (?P<name>[A-Za-z_]\w*)$")
_TYPE = r"[\w.\[\]*]+"


def call_edits(src: str, diagnostics: Iterable[Diagnostic]) -> list[Edit]:
    """The edits for the diagnostics (located in `src`) this fix knows, each once."""
    toks = tokenize(src)
    by_start = {t.start: k for k, t in enumerate(toks)}
    edits: dict[tuple[int, int, str], Edit] = {}
    for d in diagnostics:
        first = d.message.splitlines()[0].strip() if d.message else ""
        off = byte_offset(src, d.line, d.column) if d.line and d.column else None
        k = by_start.get(off) if off is not None else None
        if k is None:
            continue
        found: Edit | None = None
        if m := _WRAP_RE.match(first):
            found = _wrapped(src, toks, k, m["name"])
        elif m := _TOO_MANY_RE.match(first):
            found = _folded(src, toks, k, m["name"])
        if found is not None:
            edits.setdefault((found.start, found.end, found.text), found)
    return list(edits.values())


def _args(toks: list[Token], opened: int) -> tuple[list[tuple[int, int]], int] | None:
    """The arguments of the call whose `(` is token `opened`, as (first, last) token
    indices, and its `)`'s index; None when the call is not closed or has an empty one."""
    depth, start, args = 0, opened + 1, []
    for i in range(opened, len(toks)):
        t = toks[i].text
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
            if depth == 0:
                if start < i:
                    args.append((start, i - 1))
                return args, i
        elif t == "," and depth == 1:
            if start == i:
                return None
            args.append((start, i - 1))
            start = i + 1
    return None


def _text(src: str, toks: list[Token], span: tuple[int, int]) -> str:
    return src[toks[span[0]].start:toks[span[1]].end]


def _format_text(tok: Token) -> str | None:
    """The inside of an interpreted string literal, to extend as a format; None for
    anything else (a raw string or an expression is passed through `%s`)."""
    if tok.kind != "string" or not tok.text.startswith('"') or len(tok.text) < 2:
        return None
    return tok.text[1:-1]


def _wrapped(src: str, toks: list[Token], k: int, name: str) -> Edit | None:
    if (k < 2 or toks[k].text != name or toks[k - 1].text != "." or toks[k - 2].text != "errors"
            or k + 1 >= len(toks) or toks[k + 1].text != "("
            or (k >= 3 and toks[k - 3].text == ".")):
        return None
    if name == "Errorf":
        return Edit(toks[k - 2].start, toks[k].end, "fmt.Errorf", FIX,
                    "errors.Errorf → fmt.Errorf (package errors has no Errorf)")
    got = _args(toks, k + 1)
    if got is None:
        return None
    spans, close = got
    formatted = name.endswith("f")
    if len(spans) < 2 or (not formatted and len(spans) != 2):
        return None
    err, msg, *rest = (_text(src, toks, a) for a in spans)
    inner = _format_text(toks[spans[1][0]]) if spans[1][0] == spans[1][1] else None
    if formatted:
        if inner is None:
            return None  # a format only known at run time: no literal to extend
        new = f'fmt.Errorf("{inner}: %w", {", ".join([*rest, err])})'
    elif inner is not None:
        new = f'fmt.Errorf("{inner.replace("%", "%%")}: %w", {err})'
    else:
        new = f'fmt.Errorf("%s: %w", {msg}, {err})'
    return Edit(toks[k - 2].start, toks[close].end, new, FIX,
                f"errors.{name}(…) → {new if len(new) <= 60 else new[:57] + '...'} "
                "(package errors has no " + name + "; fmt.Errorf with %w wraps)")


def _folded(src: str, toks: list[Token], k: int, name: str) -> Edit | None:
    """`f(a, b, c)` → `f(f(a, b), c)` when the file declares `func f(x, y T) T`."""
    opened = call_open(toks, k)
    if (opened is None or opened == 0 or toks[opened - 1].text != name
            or (opened >= 2 and toks[opened - 2].text == ".") or not _binary(src, name)):
        return None
    got = _args(toks, opened)
    if got is None or len(got[0]) <= 2:
        return None
    args, close = [_text(src, toks, a) for a in got[0]], got[1]
    acc = f"{name}({args[0]}, {args[1]})"
    for a in args[2:]:
        acc = f"{name}({acc}, {a})"
    return Edit(toks[opened - 1].start, toks[close].end, acc, FIX,
                f"{name} takes two values: {len(args)} folded, "
                f"{name}({', '.join(args)}) → {acc if len(acc) <= 60 else acc[:57] + '...'}")


def _binary(src: str, name: str) -> bool:
    """Whether the file declares `name` as a function of two parameters of one type
    returning that type."""
    n = re.escape(name)
    pattern = (rf"^func\s+{n}\s*\(\s*\w+\s*(?:,\s*\w+\s+(?P<a>{_TYPE})|(?P<b>{_TYPE})\s*,"
               rf"\s*\w+\s+(?P<c>{_TYPE}))\s*\)\s*(?P<r>{_TYPE})\s*\{{")
    for m in re.finditer(pattern, src, re.M):
        types = {m["a"]} if m["a"] else {m["b"], m["c"]}
        if types == {m["r"]}:
            return True
    return False
