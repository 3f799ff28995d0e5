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
`+`/`-`. Strings, runes and comments are tokens of their own and never changed, but
for Go's error idioms: `fmt.Errorf`'s `%v` → `%w`, and `err == ErrX` →
`errors.Is(err, ErrX)`.

A runtime panic that names its cure gets guard lines before the panicking line first
(`guards`): a nil map made before it is written, an early return before a fixed index
past the end, a nil pointer used or a division by zero, and a slice bound held inside
the slice (`s[i:i+n]` → `s[i:min(i+n, len(s))]`). A computed index past the end is
checked first in the condition that reads it (`if s[i+1] == c` → `if i+1 < len(s) &&
s[i+1] == c`), or returns early elsewhere.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass

from agent.golang import signatures, trace
from agent.golang.fixes import add_imports, parse_imports
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
# Go's naming for sentinel errors: `ErrNotFound`, `io.EOF`, `sql.ErrNoRows`.
_SENTINEL = re.compile(r"^(Err[A-Z0-9_]\w*|EOF)$")
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
        # A guard's inserted lines read as one: `if m == nil { m = make(…) } m[k] = v`.
        return (f"{self.file} line {self.line}: `{' '.join(self.before.split())}` → "
                f"`{' '.join(self.after.split())}`")


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
    """The offset each line starts at: `bisect_right(starts, offset)` is its 1-based line."""
    starts = [0]
    starts += [i + 1 for i, c in enumerate(src) if c == "\n"]
    return starts


def _changes(toks: list[Token], i: int) -> Iterator[tuple[int, str]]:
    """(rank, replacement) for token i: lower ranks are the likelier slips."""
    t = toks[i]
    if t.kind == "string" and _errorf(toks, i):
        # `%v` of an error makes a new error that errors.Is and errors.As cannot see into.
        for m in re.finditer(r"%[vs]", t.text):
            yield 3, t.text[:m.start()] + "%w" + t.text[m.end():]
        return
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


def _errorf(toks: list[Token], i: int) -> bool:
    """Whether token i is the format string of an `fmt.Errorf(` call."""
    return i >= 4 and [t.text for t in toks[i - 4:i]] == ["fmt", ".", "Errorf", "("]


def _operand(toks: list[Token], i: int, step: int) -> tuple[int, int] | None:
    """The token span (first, last) of a name or selector (`err`, `io.EOF`, `r.err`)
    next to token i, on the side `step` points to; None when it is anything else."""
    j = i + step
    if not 0 <= j < len(toks) or toks[j].kind != "ident" or toks[j].text in _KEYWORDS:
        return None
    k = j
    while (0 <= k + 2 * step < len(toks) and toks[k + step].text == "."
           and toks[k + 2 * step].kind == "ident"):
        k += 2 * step
    first, last = min(j, k), max(j, k)
    # Only a whole operand: no call, index or selector goes on past it.
    if step > 0 and last + 1 < len(toks) and toks[last + 1].text in ("(", "[", "."):
        return None
    if step < 0 and first > 0 and toks[first - 1].text in (".", ")", "]"):
        return None
    return first, last


def _sentinel_compare(toks: list[Token], i: int, src: str) -> tuple[int, int, str] | None:
    """`err == ErrX` (or `!=`) as (start, end, `errors.Is(err, ErrX)`): a sentinel error
    compared by identity stops matching once anything wraps it."""
    if toks[i].text not in ("==", "!="):
        return None
    left, right = _operand(toks, i, -1), _operand(toks, i, 1)
    if left is None or right is None:
        return None
    names = [src[toks[a].start:toks[b].end] for a, b in (left, right)]
    last = [toks[left[1]].text, toks[right[1]].text]
    sentinel = [bool(_SENTINEL.match(n)) for n in last]
    if sentinel == [False, False] or "nil" in last:
        return None
    err, target = (names[1], names[0]) if sentinel[0] and not sentinel[1] else names
    call = f"errors.Is({err}, {target})"
    return (toks[left[0]].start, toks[right[1]].end,
            ("!" + call) if toks[i].text == "!=" else call)


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
            edits = [(rank, t.start, t.end, new) for rank, new in _changes(toks, i)]
            compare = _sentinel_compare(toks, i, src)
            if compare is not None:
                edits.insert(0, (3, *compare))
            for rank, start, end, new in edits:
                out = src[:start] + new + src[end:]
                if new.lstrip("!").startswith("errors.Is("):
                    out = add_imports(out, ["errors"])
                a, b = starts[line - 1], src.find("\n", t.start)
                b = len(src) if b < 0 else b
                changed = src[a:start] + new + src[end:b]
                found.append((rank, len(found),
                              Mutant(name, line, src[a:b], changed, out)))
    found.sort(key=lambda f: (f[0], f[1]))
    return [m for _, _, m in found[:limit]]



# -- guards: a few lines the panic itself calls for ---------------------------------------

_NIL_MAP = "assignment to entry in nil map"
# A negative index is printed without the length: `index out of range [-1]`.
_INDEX = re.compile(r"index out of range \[(?P<i>-?\d+)\](?: with length \d+)?")
# The runtime's four slice faults: an end past the length or capacity, an end or a start
# below 0, and a start past the end (`[5:3]`, the end being len(s) when left out).
_SLICE = re.compile(r"slice bounds out of range \[(?P<lo>-?\d*):(?P<hi>-?\d*)\]")
_SUBSCRIPTED = re.compile(r"(?<![\w.)\]])(?P<x>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\[")
_MAP_WRITE = re.compile(r"(?P<m>[A-Za-z_][\w.]*)\s*\[[^\]\n]*\]\s*(?:[-+*/|&^%]?=[^=]|\+\+|--)")
_INDEXED = re.compile(r"(?P<x>[A-Za-z_][\w.]*)\[(?P<i>\d+)\]")
_CHAIN = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_DIVISOR = re.compile(r"[/%]=?\s*(?P<d>len\([\w.]+\)|[A-Za-z_][\w.]*\b(?!\s*\())")
MAX_GUARDS = 12
MAX_LINE = 1000  # characters; bracket matching is quadratic in a line's length
_ZERO = {"string": '""', "bool": "false", "error": "nil", "any": "nil"}
_NUMERIC = re.compile(r"^(u?int(8|16|32|64)?|uintptr|float(32|64)|complex(64|128)|byte|rune)$")


def guards(files: dict[str, str], lines: dict[str, set[int]],
           panics: list[tuple[str | None, int | None, str]]) -> list[Mutant]:
    """Lines inserted before a panicking line, for the runtime faults whose cure the
    panic names: a nil map written to is made first (`if m == nil { m = make(map[K]V) }`);
    a fixed index past the end, a nil pointer used, or a division by zero returns early
    (`if len(parts) <= 1 { return "", errors.New(…) }`, `if n == nil { return 0 }`),
    with an error when the function's last result is one and zero values otherwise.
    `panics` holds (file, 1-based line, message); a panic the test recovered from has no
    place, and is looked for on the lines that ran."""
    out: dict[str, Mutant] = {}
    for file, line, message in panics:
        if _fault(message) is None:
            continue
        name = next((n for n in files if file and (
            n == file or n.endswith("/" + file) or file.endswith("/" + n))), None)
        spots = ([(name, line)] if name is not None and line else
                 [(n, ln) for n in sorted(lines) if n in files for ln in sorted(lines[n])])
        for at in spots:
            # Where the panic is not known, a computed index could be any on those
            # lines: only a fixed one the message names is guarded there.
            for m in _guards_at(files, *at, message, placed=len(spots) == 1 and bool(line)):
                out.setdefault(m.source, m)
    return list(out.values())[:MAX_GUARDS]


def _fault(message: str) -> str | None:
    if _NIL_MAP in message:
        return "map"
    if _INDEX.search(message):
        return "index"
    if "nil pointer dereference" in message:
        return "nil"
    if "integer divide by zero" in message:
        return "zero"
    if _SLICE.search(message):
        return "slice"
    return None


def _guards_at(files: dict[str, str], name: str, line: int, message: str,
               placed: bool = True) -> Iterator[Mutant]:
    src = files[name]
    starts = _line_of(src)
    if not 0 < line <= len(starts):
        return
    a = starts[line - 1]
    b = src.find("\n", a)
    b = len(src) if b < 0 else b
    text = src[a:b]
    if len(text) > MAX_LINE:  # generated, not written: no slip a guard could name
        return
    code = _code(text)
    indent = text[:len(text) - len(text.lstrip())]
    fault = _fault(message)
    if fault == "slice":
        yield from _clamps(name, src, a, text, code, message)
        return
    conds: list[tuple[str, str]] = []  # (condition, what the error says)
    if fault == "map":
        for m in _MAP_WRITE.finditer(code):
            kind = _map_type(files, m["m"].rsplit(".", 1)[-1])
            if kind:
                yield _insert(name, src, a, text, f"{indent}if {m['m']} == nil {{\n"
                              f"{indent}\t{m['m']} = make({kind})\n{indent}}}\n")
        return
    if fault == "index":
        hit = _INDEX.search(message)
        assert hit is not None
        conds = [(f"len({m['x']}) <= {m['i']}", f"{m['x']} has no element {m['i']}")
                 for m in _INDEXED.finditer(code) if m["i"] == hit["i"]]
        if not conds and placed:  # an index computed at run time: which one is not known
            computed = [(x, text[a:b].strip()) for x, _, [(a, b)] in _brackets(code, 1)
                        if not text[a:b].strip().isdigit()
                        and _map_type(files, x.rsplit(".", 1)[-1]) is None]
            below = hit["i"].startswith("-")
            yield from _conjuncts(name, src, a, text, code, [
                f"{i} >= 0" if below else f"{i} < len({x})" for x, i in computed])
            conds = [(f"{i} < 0", f"{i} is negative") if below else
                     (f"{i} >= len({x})", f"{i} is past the end of {x}") for x, i in computed]
    elif fault == "nil":
        packages = _package_names(src)
        for m in _CHAIN.finditer(code):
            parts = m.group().split(".")
            if parts[0] in packages | _KEYWORDS:
                continue
            # `n.next.val`: n or n.next may be the nil one.
            for k in range(1, len(parts)):
                x = ".".join(parts[:k])
                conds.append((f"{x} == nil", f"{x} is nil"))
    elif fault == "zero":
        conds = [(f"{m['d']} == 0", f"{m['d'][4:-1]} is empty" if m["d"].startswith("len(")
                  else f"{m['d']} is zero") for m in _DIVISOR.finditer(code)]
    back = _early_return(src, line) if conds else None
    if back is None:
        return
    zeros, error, func = back
    for cond, why in dict.fromkeys(conds):
        values = [*zeros, f'errors.New("{func}: {why}")'] if error else zeros
        ret = f"return {', '.join(values)}" if values else "return"
        yield _insert(name, src, a, text, f"{indent}if {cond} {{\n{indent}\t{ret}\n{indent}}}\n")


def _clamps(name: str, src: str, at: int, text: str, code: str,
            message: str) -> Iterator[Mutant]:
    """The faulting bound of each slice expression on the line held inside the slice:
    an end past it clamped to `len(s)`, a bound below 0 raised to 0, a start past the
    end lowered to the end. A chunk loop's `s[i:i+n]` is the classic case; the check,
    not this, judges whether clamping was the cure (a go.mod older than 1.21 has no
    `min`, and then the change does not build)."""
    hit = _SLICE.search(message)
    assert hit is not None
    lo, hi = hit["lo"], hit["hi"]
    for x, _, parts in _brackets(code, 2):  # s[a:b:c] panics with its own messages
        (a0, a1), (b0, b1) = parts
        low, high = text[a0:a1].strip(), text[b0:b1].strip()
        if lo == "" and hi.startswith("-") and high:
            edit = (b0, b1, f"max({high}, 0)")
        elif lo == "" and hi and high:
            edit = (b0, b1, f"min({high}, len({x}))")
        elif hi == "" and lo.startswith("-") and low:
            edit = (a0, a1, f"max({low}, 0)")
        elif lo and hi and low:
            edit = (a0, a1, f"min({low}, {high or f'len({x})'})")
        else:
            continue
        b, e, new = edit
        line = text[:b] + new + text[e:]
        yield Mutant(name, bisect_right(_line_of(src), at), text, line,
                     src[:at] + line + src[at + len(text):])


def _conjuncts(name: str, src: str, at: int, text: str, code: str,
               checks: list[str]) -> Iterator[Mutant]:
    """Each check put first in the line's `if` or `for` condition, so the index after it
    is read only when it is in range (`&&` stops at the first false)."""
    m = re.match(r"\s*(?:\}\s*else\s+)?(?:if|for)\s+", code)
    brace = len(code.rstrip()) - 1
    # A header with an init statement (`if v, ok := m[k]; ok {`) is left alone.
    if m is None or not checks or code[brace] != "{" or ";" in code:
        return
    cond = text[m.end():brace].rstrip()
    if "||" in cond:
        cond = f"({cond})"
    for check in dict.fromkeys(checks):
        line = f"{text[:m.end()]}{check} && {cond} {text[brace:]}"
        yield Mutant(name, bisect_right(_line_of(src), at), text, line,
                     src[:at] + line + src[at + len(text):])


def _brackets(code: str, parts: int) -> Iterator[tuple[str, int, list[tuple[int, int]]]]:
    """Each index (`parts` 1) or slice expression (2) `x[a:b]` on a line, x a name or
    selector, as (x, offset of `[`, the spans of its indexes); the brackets are matched
    so `s[f(i):xs[j]]` is one slice."""
    for m in _SUBSCRIPTED.finditer(code):
        depth, found, begin = 0, [], m.end()
        for j in range(m.end(), len(code)):
            c = code[j]
            if c in "([{":
                depth += 1
            elif c in ")}" or (c == "]" and depth):
                depth -= 1
            elif c == "]":
                found.append((begin, j))
                break
            elif c == ":" and depth == 0:
                found.append((begin, j))
                begin = j + 1
        else:
            continue
        if len(found) == parts:
            yield m["x"], m.end() - 1, found


def _insert(name: str, src: str, at: int, text: str, insert: str) -> Mutant:
    new = src[:at] + insert + src[at:]
    if "errors.New(" in insert:
        new = add_imports(new, ["errors"])
    return Mutant(name, bisect_right(_line_of(src), at), text, insert + text, new)


def _code(text: str) -> str:
    """A line with its strings, runes and comment blanked, so no pattern matches in them."""
    out = list(text)
    for t in tokenize(text):
        if t.kind == "string":
            out[t.start:t.end] = " " * (t.end - t.start)
    cut = "".join(out).find("//")
    return "".join(out)[:cut] if cut >= 0 else "".join(out)


def _package_names(src: str) -> set[str]:
    """The names the file's imports are used by (a path's last element, or its alias)."""
    return {s.name or s.path.rsplit("/", 1)[-1] for s in parse_imports(src).specs}


def _map_type(files: dict[str, str], name: str) -> str | None:
    """The map type `name` is declared with (a field, a var or a parameter), when the
    package declares one name so with one type."""
    found = set()
    for src in files.values():
        for m in re.finditer(rf"\b{re.escape(name)}\s+(?=map\[)", src):
            kind = _type_at(src, m.end())
            if kind:
                found.add(kind)
    return found.pop() if len(found) == 1 else None


def _type_at(src: str, at: int) -> str | None:
    """The type written at `at`, up to where a declaration or parameter list goes on."""
    depth = 0
    for j in range(at, min(len(src), at + 200)):
        c = src[j]
        if c in "([":
            depth += 1
        elif c in ")]":
            if depth == 0:
                return src[at:j].strip() or None
            depth -= 1
        elif depth == 0 and (c in ",;=\n" or src.startswith("//", j)
                             or (c == "{" and not src[at:j].rstrip().endswith(
                                 ("struct", "interface")))):
            return src[at:j].strip() or None
    return None


def _early_return(src: str, line: int) -> tuple[list[str], bool, str] | None:
    """For the function holding `line`: the zero values of its results (all but the
    last when that is an error), whether it returns an error, and its name."""
    lines = src.split("\n")
    for name, first, last in trace.functions(src):
        if not first <= line <= last:
            continue
        sig = next(iter(signatures.declared("\n".join(lines[first - 1:last])).values()), None)
        if sig is None:
            return None
        error = bool(sig.results) and sig.results[-1] == "error"
        kinds = sig.results[:-1] if error else sig.results
        return [_zero(t) for t in kinds], error, name
    return None


def _zero(kind: str) -> str:
    if kind in _ZERO:
        return _ZERO[kind]
    if _NUMERIC.match(kind):
        return "0"
    if kind.startswith(("*", "[]", "map[", "chan", "func", "interface")):
        return "nil"
    return f"*new({kind})"  # the zero value of any type, a struct's included
