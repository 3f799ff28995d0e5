"""Values written in a form Go does not accept where they stand, and the form it does.

Each is a fix the compiler's message pins down, with one reading only:

- an array passed where a slice of its elements is wanted is sliced: `parts[:]`;
- a map, slice or call declared `const` (Go constants are numbers, strings and booleans
  only) is declared `var`: the one-line declaration, or a whole `const ( … )` block when
  no spec in it leans on iota or on repeating the spec above;
- `len(b)` of a strings.Builder or bytes.Buffer is its `b.Len()`;
- a string appended to runes is appended as its runes (`append(rs, []rune(s)...)`), to
  bytes as its bytes (`append(bs, s...)`), when it is the only value appended;
- `append(p, x)` with p a pointer to a slice appends to what p points at, and a line
  `p = append(p, x)` stores the result there: `*p = append(*p, x)`;
- slices joined with `+` (`xs[k:] + xs[:k]`, `out += more`; Go has no `+` on slices) are
  `slices.Concat(a, b)`, a new slice as `+` would give, never one sharing a's array as
  `append(a, b...)` may;
- a string copied into runes (`copy(rs, s)`, which Go allows only into bytes) is copied
  as its runes: `copy(rs, []rune(s))`.

Like the other compiler fixes, each edit applies only where the source holds what the
message names, and is kept only if the file still parses and (never-worse) the check
improves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from agent.golang.tokens import Token, tokenize
from agent.golang.typefixes import Edit, byte_offset
from tools.diagnostics import Diagnostic

FIX = "value-forms"

_ARRAY_AS_SLICE_RE = re.compile(r"^cannot use (?P<expr>[A-Za-z_][\w.]*) \(variable of type "
                                r"\[\d+\](?P<elem>\S+)\) as \[\](?P=elem) value in ")
_NOT_CONSTANT_RE = re.compile(r"^(?P<expr>.+) \(value of type .+\) is not constant$")
_LEN_OF_BUFFER_RE = re.compile(r"^invalid argument: (?P<name>[A-Za-z_][\w.]*) \(variable of "
                               r"(?:struct )?type \*?(?:strings\.Builder|bytes\.Buffer)\) for "
                               r"built-in len$")
_STRING_APPENDED_RE = re.compile(r"^cannot use (?P<expr>.+) \((?:value|variable) of type "
                                 r"string\) as (?P<elem>rune|int32|byte|uint8) value in "
                                 r"argument to append$")
_POINTER_APPEND_RE = re.compile(r"^invalid append: argument must be a slice; have "
                                r"(?P<name>[A-Za-z_]\w*) \(variable of type \*\[\].+\)$")
_SLICE_PLUS_RE = re.compile(r"^invalid operation: operator \+ not defined on (?P<expr>.+) "
                            r"\((?:value|variable) of type \[\][^()]+\)$")
_COPY_STRING_RE = re.compile(r"^invalid copy: arguments (?P<dst>.+) \((?:value|variable) of "
                             r"type \[\](?:rune|int32)\) and (?P<src>.+) \((?:value|variable) "
                             r"of type string\) have different element types")
# Where an operand of a binary `+` ends (at bracket depth 0): Go's operators that bind
# no tighter than `+`, and what closes an expression (a `{` only where it opens a block).
_OPERAND_ENDS = frozenset({"+", "-", "|", "^", "=", "<", ">", "!", "&", ",", ";", ")", "]",
                           "}", ":"})


def form_edits(src: str, diagnostics: Iterable[Diagnostic]) -> list[Edit]:
    """The edits for the diagnostics (located in `src`) this fix knows, each once."""
    toks = tokenize(src)
    edits: dict[tuple[int, int, str], Edit] = {}
    for first, k in located(src, toks, diagnostics):
        found: list[Edit] = []
        if m := _ARRAY_AS_SLICE_RE.match(first):
            found = _sliced(toks, k, m["expr"])
        elif m := _NOT_CONSTANT_RE.match(first):
            found = _declared_var(src, toks, k)
        elif m := _LEN_OF_BUFFER_RE.match(first):
            found = _len_method(toks, k, m["name"])
        elif m := _STRING_APPENDED_RE.match(first):
            found = _spread(src, toks, k, m["expr"], m["elem"])
        elif m := _POINTER_APPEND_RE.match(first):
            found = _through_pointer(src, toks, k, m["name"])
        for e in found:
            edits.setdefault((e.start, e.end, e.text), e)
    # These two the compiler places at an operand's bracket, not its start: found by line.
    for d in diagnostics:
        first = d.message.splitlines()[0].strip() if d.message else ""
        found = []
        if d.line and (m := _SLICE_PLUS_RE.match(first)):
            found = _concat(src, toks, d.line, m["expr"])
        elif d.line and (m := _COPY_STRING_RE.match(first)):
            found = _copy_runes(src, toks, d.line, m["dst"], m["src"])
        for e in found:
            edits.setdefault((e.start, e.end, e.text), e)
    return list(edits.values())


def _spelled_on_line(src: str, toks: list[Token], line: int, expr: str
                     ) -> list[tuple[int, int]]:
    """(first, past) token indices of each place on `line` (1-based) spelling `expr`."""
    lo = 0
    for _ in range(line - 1):
        lo = src.find("\n", lo) + 1
        if lo == 0:
            return []
    hi = src.find("\n", lo)
    hi = len(src) if hi < 0 else hi
    out = []
    for k, t in enumerate(toks):
        if lo <= t.start < hi and (end := spells(toks, k, expr)) is not None:
            out.append((k, end))
    return out


def _concat(src: str, toks: list[Token], line: int, expr: str) -> list[Edit]:
    """`a + b` with a a slice: `slices.Concat(a, b)`; `a += b`: `a = slices.Concat(a, b)`.
    Only where the line holds `expr +` once, so there is no doubt which sum is meant."""
    spots = [(k, end) for k, end in _spelled_on_line(src, toks, line, expr)
             if end < len(toks) and toks[end].text == "+"]
    if len(spots) != 1:
        return []
    k, plus = spots[0]
    left = src[toks[k].start:toks[plus - 1].end]
    if plus + 1 < len(toks) and toks[plus + 1].text == "=":  # `a += b`
        right = _operand(src, toks, plus + 2)
        if right is None:
            return []
        r0, r1 = right
        new = f"{left} = slices.Concat({left}, {src[r0:r1]})"
        return [Edit(toks[k].start, r1, new, FIX, f"{left} += … → {new}")]
    if k > 0 and toks[k - 1].text in (".", "*", "&", "!", "^", "<-"):
        return []  # expr is part of a larger operand than the message names
    right = _operand(src, toks, plus + 1)
    if right is None:
        return []
    r0, r1 = right
    new = f"slices.Concat({left}, {src[r0:r1]})"
    return [Edit(toks[k].start, r1, new, FIX,
                 f"{left} + {src[r0:r1]} → {new} (Go has no + on slices)")]


def _operand(src: str, toks: list[Token], at: int) -> tuple[int, int] | None:
    """The source span of the operand of a binary `+` that starts at token `at`: up to
    the first operator or closing token at depth 0, or the end of the line."""
    if at >= len(toks):
        return None
    depth, last = 0, None
    for i, t in enumerate(toks[at:], at):
        # `{` ending its line opens a block (`if a + b {`); within a line, a composite
        # literal (`[]string{"."}`).
        opens_block = t.text == "{" and (i + 1 == len(toks)
                                         or "\n" in src[t.end:toks[i + 1].start])
        if depth == 0 and last is not None and (
                t.text in _OPERAND_ENDS or opens_block or "\n" in src[last.end:t.start]):
            break
        depth += (t.text in "([{") - (t.text in ")]}")
        last = t
    if last is None or depth != 0:
        return None
    return toks[at].start, last.end


def _copy_runes(src: str, toks: list[Token], line: int, dst: str, text: str) -> list[Edit]:
    """`copy(rs, s)` with rs runes and s a string: `copy(rs, []rune(s))`."""
    edits = []
    for k, end in _spelled_on_line(src, toks, line, dst):
        if not (k >= 2 and toks[k - 1].text == "(" and toks[k - 2].text == "copy"
                and end < len(toks) and toks[end].text == ","):
            continue
        past = spells(toks, end + 1, text)
        if past is None or past >= len(toks) or toks[past].text != ")":
            continue
        a, b = toks[end + 1].start, toks[past - 1].end
        edits.append(Edit(a, b, f"[]rune({text})", FIX,
                          f"copy({dst}, {text}) → copy({dst}, []rune({text}))"))
    return edits


def spells(toks: list[Token], k: int, expr: str) -> int | None:
    """The index just past the tokens from k that spell `expr` (compared token by token:
    the compiler prints with its own spacing), or None."""
    want = [t.text for t in tokenize(expr)]
    if [t.text for t in toks[k:k + len(want)]] != want:
        return None
    return k + len(want)


def _sliced(toks: list[Token], k: int, expr: str) -> list[Edit]:
    end = spells(toks, k, expr)
    if end is None:
        return []
    at = toks[end - 1].end
    return [Edit(at, at, "[:]", FIX, f"{expr} → {expr}[:] (the array as a slice)")]


def _declared_var(src: str, toks: list[Token], k: int) -> list[Edit]:
    """The `const` that declares the value at token k, as `var`."""
    depth = 0
    for i in range(k - 1, -1, -1):
        t = toks[i]
        if t.text in ")]}":
            depth += 1
        elif t.text in "([{":
            depth -= 1
            if depth < 0:
                if t.text == "(" and i > 0 and toks[i - 1].text == "const":
                    return _block_var(src, toks, i - 1)
                return []
        elif depth == 0 and t.text == "const":
            line_start = src.rfind("\n", 0, toks[k].start) + 1
            if t.start < line_start:
                return []  # a const that ends before this line declares something else
            return [Edit(t.start, t.end, "var", FIX,
                         f"const → var: {_line(src, t.start)} (not a constant value)")]
        elif depth == 0 and t.text in (";", "func", "var", "type"):
            return []
    return []


def _block_var(src: str, toks: list[Token], at: int) -> list[Edit]:
    """`const ( … )` as `var ( … )`, when every spec gives its own value and none uses iota:
    a spec without `=` repeats the one above, which only constants do."""
    depth, specs, prev = 0, [[]], None
    for t in toks[at + 2:]:
        if depth == 0 and t.text == ")":
            break
        if t.text == "iota":
            return []
        if depth == 0 and (t.text == ";" or (prev is not None and specs[-1]
                                             and "\n" in src[prev.end:t.start])):
            specs.append([])
        if t.text in "([{":
            depth += 1
        elif t.text in ")]}":
            depth -= 1
        if t.text != ";":
            specs[-1].append(t.text)
        prev = t
    specs = [s for s in specs if s]
    if not specs or any("=" not in s for s in specs):
        return []
    t = toks[at]
    return [Edit(t.start, t.end, "var", FIX, "const ( … ) → var ( … ) (not constant values)")]


def _line(src: str, at: int) -> str:
    end = src.find("\n", at)
    text = src[at:end if end >= 0 else len(src)].strip()
    return text if len(text) <= 60 else text[:57] + "..."


def _len_method(toks: list[Token], k: int, name: str) -> list[Edit]:
    end = spells(toks, k, name)
    if (end is None or k < 2 or toks[k - 1].text != "(" or toks[k - 2].text != "len"
            or end >= len(toks) or toks[end].text != ")"):
        return []
    return [Edit(toks[k - 2].start, toks[end].end, f"{name}.Len()", FIX,
                 f"len({name}) → {name}.Len()")]


def located(src: str, toks: list[Token], diagnostics: Iterable[Diagnostic]
            ) -> Iterator[tuple[str, int]]:
    """Each diagnostic's first message line and the index of the token it points at (those
    that point at none are left out)."""
    by_start = {t.start: k for k, t in enumerate(toks)}
    for d in diagnostics:
        off = byte_offset(src, d.line, d.column) if d.line and d.column else None
        k = by_start.get(off) if off is not None else None
        if k is not None:
            yield (d.message.splitlines()[0].strip() if d.message else ""), k


def enclosing(toks: list[Token], k: int) -> int | None:
    """The index of the innermost bracket that is open at token k."""
    depth = 0
    for i in range(k - 1, -1, -1):
        if toks[i].text in ")]}":
            depth += 1
        elif toks[i].text in "([{":
            if depth == 0:
                return i
            depth -= 1
    return None


def call_open(toks: list[Token], k: int) -> int | None:
    """The index of the `(` of the call whose argument starts at token k."""
    i = enclosing(toks, k)
    return i if i is not None and toks[i].text == "(" else None


def _spread(src: str, toks: list[Token], k: int, expr: str, elem: str) -> list[Edit]:
    """`append(xs, s)` with s a string and xs runes or bytes: s's runes or bytes, spread.
    Only as the single value appended; with more, no one spread can take its place."""
    end = spells(toks, k, expr)
    opened = call_open(toks, k)
    if (end is None or opened is None or opened == 0 or toks[opened - 1].text != "append"
            or end >= len(toks) or toks[end].text != ")" or toks[k - 1].text != ","):
        return []
    depth = 0
    for t in toks[opened + 1:k - 1]:
        depth += (t.text in "([{") - (t.text in ")]}")
        if depth == 0 and t.text == ",":
            return []  # another value before it
    text = src[toks[k].start:toks[end - 1].end]
    new = f"[]rune({text})..." if elem in ("rune", "int32") else f"{text}..."
    return [Edit(toks[k].start, toks[end - 1].end, new, FIX,
                 f"append(…, {text}) → append(…, {new})")]


def _through_pointer(src: str, toks: list[Token], k: int, name: str) -> list[Edit]:
    """`append(p, x)` with p a *[]T: `append(*p, x)`; `p = append(p, x)` becomes
    `*p = append(*p, x)`, since the slice, not the pointer, takes the result."""
    if toks[k].text != name or k < 2 or toks[k - 1].text != "(" or toks[k - 2].text != "append":
        return []
    at = toks[k].start
    edits = [Edit(at, at, "*", FIX, f"append({name}, …) → append(*{name}, …)")]
    # The statement's target: `name =` opening the line that holds the call.
    line_start = src.rfind("\n", 0, at) + 1
    head = [t for t in toks[:k - 2] if t.start >= line_start]
    if [t.text for t in head] == [name, "="]:
        edits.append(Edit(head[0].start, head[0].start, "*", FIX,
                          f"{name} = append(…) → *{name} = append(…)"))
    return edits
