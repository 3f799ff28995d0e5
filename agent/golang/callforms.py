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
  `func min(x, y int) int`), is folded: `min(min(a, b), c)`;
- a call returning two values used as one inside an expression (`total +=
  strconv.Atoi(p)`, `append(xs, parse(s))`) is taken on a line of its own before the
  statement, `v, _ := strconv.Atoi(p)`, and its first value used: the code then builds
  and the tests judge whether the dropped value mattered (a lone `x := f()` is
  extra-results' `x, _ := f()`).

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
from agent.golang.typefixes import Edit
from agent.golang.valueforms import call_open, located, spells
from tools.diagnostics import Diagnostic

FIX = "call-forms"

_WRAP_RE = re.compile(r"^undefined: errors\.(?P<name>Wrapf?|WithMessagef?|Errorf)$")
_TOO_MANY_RE = re.compile(r"^too many arguments in call to (?P<name>[A-Za-z_]\w*)$")
_TWO_AS_ONE_RE = re.compile(r"^multiple-value (?P<call>.+) \(value of type \([^,()]+, [^,()]+\)\) "
                            r"in single-value context$")
# A line after one ending so is the same statement continued: nothing can go between.
_CONTINUES = frozenset(("(", "[", ",", ".", "+", "-", "*", "/", "%", "&", "|", "^",
                        "<", ">", "=", "!", ":", "&&", "||"))
_TYPE = r"[\w.\[\]*]+"


def call_edits(src: str, diagnostics: Iterable[Diagnostic]) -> list[Edit]:
    """The edits for the diagnostics (located in `src`) this fix knows, each once."""
    toks = tokenize(src)
    edits: dict[tuple[int, int, str], Edit] = {}
    taken = {t.text for t in toks}
    for first, k in located(src, toks, diagnostics):
        found: Edit | None = None
        if m := _WRAP_RE.match(first):
            found = _wrapped(src, toks, k, m["name"])
        elif m := _TOO_MANY_RE.match(first):
            found = _folded(src, toks, k, m["name"])
        elif m := _TWO_AS_ONE_RE.match(first):
            for e in _hoisted(src, toks, k, m["call"], taken):
                edits.setdefault((e.start, e.end, e.text), e)
        if found is not None:
            edits.setdefault((found.start, found.end, found.text), found)
    return list(edits.values())


def _hoisted(src: str, toks: list[Token], k: int, call: str, taken: set[str]) -> list[Edit]:
    """`total += f(x)` with f returning two values: `v, _ := f(x)` on the line before,
    `total += v`. Only where the statement starts on the call's line, in a function body,
    and is not a loop header or a case (run more than once, or nowhere to put a line)."""
    end = spells(toks, k, call)
    if end is None:
        return []
    line_start = src.rfind("\n", 0, toks[k].start) + 1
    head = next(i for i in range(k, -1, -1) if i == 0 or toks[i - 1].end <= line_start)
    indent = src[line_start:toks[head].start]
    if (head == 0 or indent.strip() or not indent or toks[head].text in (
            "for", "case", "default", "}", "else", "func", "var", "const", "type", "go",
            "defer", "select", "switch")
            or toks[head - 1].text in _CONTINUES):
        return []
    before = [t.text for t in toks[head:k]]
    alone = end >= len(toks) or "\n" in src[toks[end - 1].end:toks[end].start]
    if alone and ((len(before) == 2 and before[1] in (":=", "=")) or before[:1] == ["var"]):
        return []  # a lone name assigned the call: extra-results' `x, _ :=`
    name = next(n for n in ("v", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "value")
                if n not in taken)
    taken.add(name)
    text = src[toks[k].start:toks[end - 1].end]
    detail = f"{text} → {name}, taken first as `{name}, _ := {text}` (its second value dropped)"
    at = toks[head].start
    return [Edit(at, at, f"{name}, _ := {text}\n{indent}", FIX, detail),
            Edit(toks[k].start, toks[end - 1].end, name, FIX, detail)]


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
