"""Fixes made where the compiler points: errors whose repair it spells out exactly.

`x declared and not used` loses its declaration when the line does nothing else (`x :=
0`, nothing else names x); otherwise it gets `_ = x` after its declaration (as gopls
offers), so the answer reaches the tests, which judge whether x was meant to matter; `cannot use c
(variable of type rune) as int value` becomes `int(c)`; a method value used as its
result is called; `a + b (mismatched types rune and int)` converts one operand (an
integer meeting a float becomes the float, never the reverse; a rune or byte meeting a
string becomes a one-character string, `s += string(r)`); a printf verb go vet
rejects for its argument's type becomes `%c` (a rune given to `%s`) or `%v`, and a format
of verbs alone given more values than verbs gets a `%v` for each value past them.

Each edit applies only where the source holds what the message names, and only if
gofmt still parses the file afterwards; anything else is left for the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from agent.golang.tokens import Token, tokenize
from tools.diagnostics import Diagnostic
from tools.go import ToolchainError
from tools.gofmt import gofmt_source

_UNUSED_VAR_RE = re.compile(r"^declared and not used: (?P<name>[A-Za-z_]\w*)$")
_NUMERIC = frozenset({"int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16",
                      "uint32", "uint64", "uintptr", "byte", "rune", "float32", "float64"})
_MISMATCH_RE = re.compile(r"^invalid operation: (?P<expr>.+) \(mismatched types "
                          r"(?P<left>\w+) and (?P<right>\w+)\)$")
# go vet's printf check, which `go test` runs before any test: the column is the verb's.
_PRINTF_RE = re.compile(r"^[\w.]+ format (?P<verb>%[-+# 0]*\d*(?:\.\d*)?[a-zA-Z]) has arg "
                        r"(?P<arg>.+) of wrong type (?P<type>\S+)$")
_PRINTF_ARITY_RE = re.compile(r"^[\w.]+ call needs (?P<need>\d+) args? but has "
                              r"(?P<have>\d+) args?$")
# A format that is nothing but verbs: with more values than verbs, the values were meant
# printed one after another (`"%s%s"` given three strings), the one reading there is.
_VERBS_ONLY_RE = re.compile(r'^"(?:%[-+# 0]*\d*(?:\.\d*)?[a-zA-Z])+"$')
_CANNOT_USE_RE = re.compile(
    r"^cannot use (?P<expr>.+) \((?:variable|value) of type (?P<call>func\(\) )?"
    r"(?P<have>(?:\[\])?[\w.]+)\) as (?P<want>(?:\[\])?[\w.]+) value in ")
# The conversions between text and its characters that Go spells out and that keep the
# value: a rune or byte as a one-character string, a string as its bytes or runes.
_TEXT_CONVERSIONS = {("rune", "string"): "string", ("byte", "string"): "string",
                     ("[]rune", "string"): "string", ("[]byte", "string"): "string",
                     ("string", "[]byte"): "[]byte", ("string", "[]rune"): "[]rune"}
_UNTYPED_STRING_RE = re.compile(r"^cannot use (?P<expr>\"[^\"\\\x27]\") \(untyped string "
                                r"constant\) as (?P<want>rune|byte|int32|uint8) value in ")
_ONE_CHAR_STRING_RE = re.compile(r"^\"(?:[^\"\\\x27]|\\[nt\\])\"$")
# A value whose type has the method only on its pointer: its address has it.
_POINTER_RECEIVER_RE = re.compile(
    r"^cannot use (?P<expr>[A-Za-z_][\w.]*(?:\{…\})?) \((?:variable|value) of (?:struct )?"
    r"type [\w.]+\) as \S+ value in .+ does not implement .+ \(method (?P<method>\w+) has "
    r"pointer receiver\)$")


# After these a newline ends a statement (the spec's automatic semicolon rule).
_ENDS_STATEMENT = frozenset({")", "]", "}", "++", "--", "break", "continue", "fallthrough",
                             "return"})
_OPEN, _CLOSE = frozenset("([{"), frozenset(")]}")


def byte_offset(src: str, line: int, col: int) -> int | None:
    """The character offset of the compiler's 1-based line and byte column."""
    lines = src.split("\n")
    if not 1 <= line <= len(lines):
        return None
    raw = lines[line - 1].encode()
    if not 1 <= col <= len(raw) + 1:
        return None
    return sum(len(x) + 1 for x in lines[:line - 1]) + len(
        raw[:col - 1].decode(errors="ignore"))


def _use_point(src: str, toks: list[Token], i: int) -> tuple[int, str] | None:
    """Where `_ = name` can go so that the variable declared at token i counts as used."""
    line_start = src.rfind("\n", 0, toks[i].start) + 1
    head = src[line_start:toks[i].start].split()
    head = [w for w in head if w not in ("}", "else")]
    if head and head[0] in ("switch", "select", "case", "default:"):
        return None  # type-switch and select bindings have no statement to follow
    header = bool(head) and head[0] in ("if", "for")
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j]
        if t.text in _OPEN:
            if header and depth == 0 and t.text == "{":
                return t.end, "line"  # first statement of the body, where it is in scope
            depth += 1
        elif t.text in _CLOSE:
            depth -= 1
            if depth < 0:
                return t.start, "before"  # the block closes on the declaration's line
        elif depth == 0 and t.text == ";" and not header:
            return t.end, "after"
        if depth == 0 and not header and j + 1 < len(toks) and "\n" in src[
                t.end:toks[j + 1].start] and (t.kind != "op" or t.text in _ENDS_STATEMENT):
            return t.end, "line"
    return None


def _unused_var_edits(src: str, spots: Iterable[tuple[int, int, str]]) -> list[Edit]:
    toks = tokenize(src)
    by_start = {t.start: k for k, t in enumerate(toks)}
    edits: list[Edit] = []
    for line, col, name in spots:
        off = byte_offset(src, line, col)
        k = by_start.get(off) if off is not None else None
        if k is None or toks[k].text != name:
            continue
        if (point := _use_point(src, toks, k)) is not None:
            at, where = point
            text = {"line": f"\n_ = {name}", "before": f"; _ = {name}; ",
                    "after": f" _ = {name};"}[where]
            edits.append(Edit(at, at, text, "unused-vars",
                               f"{name} declared and not used: added `_ = {name}`"))
    return edits


# A declaration whose removal changes nothing: `x := 0`, `var s string`, `var ok = false`,
# `buf := []byte{}` — a value without calls, so no side effect or panic goes with it.
_DECL_LINE_RE = re.compile(
    r"^[ \t]*(?:(?P<short>[A-Za-z_]\w*)[ \t]*:=|var[ \t]+(?P<var>[A-Za-z_]\w*)\b)"
    r"(?P<rest>[^;\n]*)$")
_PLAIN_VALUE_RE = re.compile(
    r"^(?:-?\d[\w.+-]*|\"(?:[^\"\\]|\\.)*\"|`[^`]*`|'(?:[^'\\]|\\.)+'|true|false|nil|"
    r"(?:\[\]|map\[\w+\])?[\w.]*\{\})$")
_TYPE_RE = re.compile(r"^(?:\*|\[\]|map\[\w+\])*[\w.]+$")


def _unused_decl_edits(src: str, spots: Iterable[tuple[int, int, str]]) -> list[Edit]:
    """Delete the line declaring an unused variable when that is all the line does, the
    value has no effect and the name appears nowhere else in the file."""
    toks = tokenize(src)
    lines = src.split("\n")
    edits: list[Edit] = []
    for line, _col, name in spots:
        if not 1 <= line <= len(lines) or sum(t.text == name for t in toks) != 1:
            continue
        m = _DECL_LINE_RE.match(lines[line - 1])
        if m is None or (m["short"] or m["var"]) != name:
            continue
        rest = m["rest"].split("//")[0].strip()
        if m["short"]:
            ok = bool(_PLAIN_VALUE_RE.match(rest))
        else:
            typ, _, value = (x.strip() for x in rest.partition("="))
            ok = (not typ or bool(_TYPE_RE.match(typ))) and (
                (not value and bool(typ)) or bool(_PLAIN_VALUE_RE.match(value)))
        if not ok:
            continue
        start = sum(len(x) + 1 for x in lines[:line - 1])
        edits.append(Edit(start, start + len(lines[line - 1]) + 1, "", "unused-decls",
                          f"{name} declared and not used: removed `{lines[line - 1].strip()}`"))
    return edits


def _conversion_edits(src: str, spots: Iterable[tuple[int, int, str, str]]) -> list[Edit]:
    edits = []
    for line, col, expr, new in spots:
        off = byte_offset(src, line, col)
        if off is not None and src.startswith(expr, off):
            edits.append(Edit(off, off + len(expr), new, "conversions", f"{expr} → {new}"))
    return edits


# Go's binary operators by precedence (the spec's table); unary uses are told apart by
# what precedes them.
_PRECEDENCE = {**dict.fromkeys(("*", "/", "%", "<<", ">>", "&", "&^"), 5),
               **dict.fromkeys(("+", "-", "|", "^"), 4),
               **dict.fromkeys(("==", "!=", "<", "<=", ">", ">="), 3),
               "&&": 2, "||": 1}


def _grouped(tokens: list[Token]) -> list[Token]:
    """Tokens with multi-character binary operators (`<=`, `&^`, `&&` …) joined."""
    out: list[Token] = []
    for t in tokens:
        prev = out[-1] if out else None
        if (prev is not None and t.kind == "op" and prev.kind == "op"
                and prev.end == t.start and prev.text + t.text in _PRECEDENCE):
            out[-1] = Token("op", prev.text + t.text, prev.start, t.end)
        else:
            out.append(t)
    return out


def _root_operator(tokens: list[Token]) -> int | None:
    """Index of the operator a printed binary expression `X op Y` splits at: the last
    one of lowest precedence outside brackets (Go's binary operators associate left)."""
    depth, best, best_prec = 0, None, 99
    for i, t in enumerate(tokens):
        if t.text in ("(", "[", "{"):
            depth += 1
        elif t.text in (")", "]", "}"):
            depth -= 1
        elif (depth == 0 and t.kind == "op" and t.text in _PRECEDENCE and i > 0
              and not (tokens[i - 1].kind == "op" and tokens[i - 1].text not in ")]}")
              and _PRECEDENCE[t.text] <= best_prec):
            best, best_prec = i, _PRECEDENCE[t.text]
    return best


def _mismatch_edits(src: str, spots: Iterable[tuple[int, int, str, str, str]]
                    ) -> list[Edit]:
    """`X op Y` with numeric operands of two types (spots: line, byte column, `X op Y`, X's
    type, Y's type): Y is converted to X's type, except that an integer meeting a float
    becomes the float (never truncate), and a rune or byte meeting a string becomes a
    string. Applied where the source holds that expression."""
    toks = _grouped(tokenize(src))
    by_start = {t.start: k for k, t in enumerate(toks)}
    edits = []
    for line, col, expr, left_type, right_type in spots:
        if (found := _located(src, toks, by_start, line, col, expr)) is None:
            continue
        want, span, root = found
        if "string" in (left_type, right_type):
            # Text meeting a character: the character becomes a one-character string
            # (`s += r`, `s == b`); a rune variable cannot hold a string, so `r += s`
            # is left alone.
            assign = _assignment(want)
            if assign is not None:
                side = span[assign[1]:] if left_type == "string" else []
            else:
                side = span[root + 1:] if left_type == "string" else span[:root]
            if side:
                operand = src[side[0].start:side[-1].end]
                edits.append(Edit(side[0].start, side[-1].end, f"string({operand})",
                                   "conversions", f"{operand} → string({operand}) in {expr}"))
            continue
        if (assign := _assignment(want)) is not None:
            # `x op= y`: x is a variable, never a conversion. Its declaration changes or y
            # is converted, so that no value is truncated.
            target, value = span[:assign[0]], span[assign[1]:]
            if not value:
                continue
            if right_type.startswith("float") and not left_type.startswith("float"):
                if len(target) == 1 and target[0].kind == "ident" and (
                        e := retype_declaration(src, target[0].text, target[0].start,
                                                right_type)) is not None:
                    edits.append(e)
                continue
            start, end = value[0].start, value[-1].end
            operand = src[start:end]
            edits.append(Edit(start, end, f"{left_type}({operand})", "conversions",
                               f"{operand} → {left_type}({operand}) in {expr}"))
            continue
        if left_type.startswith("float") or not right_type.startswith("float"):
            side, to = span[root + 1:], left_type
        else:
            side, to = span[:root], right_type
        start, end = side[0].start, side[-1].end
        operand = src[start:end]
        if (to.startswith("float") and len(side) == 1 and side[0].kind == "ident"
                and (m := _ASSIGN_LINE_RE.match(src[src.rfind("\n", 0, start) + 1:]))
                and m["name"] == operand
                and (e := retype_declaration(src, operand, start, to)) is not None):
            edits.append(e)  # `total = total + f`: the accumulator becomes a float
            continue
        edits.append(Edit(start, end, f"{to}({operand})", "conversions",
                           f"{operand} → {to}({operand}) in {expr}"))
    return edits


def _located(src: str, toks: list[Token], by_start: dict[int, int], line: int, col: int,
             expr: str) -> tuple[list[Token], list[Token], int] | None:
    """The binary expression the compiler printed as `expr` at (line, byte column): its
    own tokens, the source's tokens that spell it, and the index of its root operator.
    Compared token by token, since the compiler prints it with its own spacing."""
    off = byte_offset(src, line, col)
    k = by_start.get(off) if off is not None else None
    want = _grouped(tokenize(expr))
    root = _root_operator(want)
    if k is None or root is None or root + 1 >= len(want):
        return None
    # The compiler puts most of these at X, comparisons further in: look back.
    texts = [t.text for t in want]
    span = next((toks[i:i + len(want)] for i in range(k, max(k - len(want), -1), -1)
                 if [t.text for t in toks[i:i + len(want)]] == texts), None)
    return None if span is None else (want, span, root)


def _assignment(tokens: list[Token]) -> tuple[int, int] | None:
    """(end of the target, start of the value) when a printed expression is an assignment
    (`x = y`, `x += y`, `x <<= y`): a lone `=` outside brackets (comparisons are grouped)."""
    depth = 0
    for i, t in enumerate(tokens):
        if t.text in _OPEN:
            depth += 1
        elif t.text in _CLOSE:
            depth -= 1
        elif depth == 0 and t.text == "=":
            j = i
            # The operator glued to `=` (`+=`, `<<=`, `&^=`) belongs to neither side.
            while j > 0 and tokens[j - 1].kind == "op" and tokens[j - 1].end == tokens[j].start \
                    and tokens[j - 1].text not in _CLOSE:
                j -= 1
            return j, i + 1
    return None


_INT_LIT = r"[-+]?\d[\d_]*"


def retype_declaration(src: str, name: str, use: int, new_type: str) -> Edit | None:
    """Change the declaration of local variable `name`, the nearest one above offset `use`
    in the same function, to hold a `new_type` (a float): `total := 0` → `total := 0.0`,
    `var total int` → `var total float64`. None when no such simple declaration is found
    (a parameter, a named result, a multi-assignment): those are the model's to change."""
    n = re.escape(name)
    short = re.compile(rf"^(?P<pre>[ \t]*{n}[ \t]*:=[ \t]*)(?P<lit>{_INT_LIT})[ \t]*(?://.*)?$")
    typed = re.compile(rf"^(?P<pre>[ \t]*var[ \t]+{n}[ \t]+)(?P<type>\w+)\b")
    untyped = re.compile(rf"^(?P<pre>[ \t]*var[ \t]+{n}[ \t]*=[ \t]*)(?P<lit>{_INT_LIT})"
                         r"[ \t]*(?://.*)?$")
    line_end = src.rfind("\n", 0, use)
    while line_end > 0:
        line_start = src.rfind("\n", 0, line_end) + 1
        line = src[line_start:line_end]
        if line.startswith("func"):
            return None  # the top of the enclosing function: a parameter or a result
        if m := typed.match(line):
            if m["type"] not in _NUMERIC or m["type"] == new_type:
                return None
            at = line_start + m.end("pre")
            return Edit(at, at + len(m["type"]), new_type, "conversions",
                        f"var {name} {m['type']} → var {name} {new_type}")
        if m := short.match(line) or untyped.match(line):
            lit = m["lit"]
            new = f"{lit}.0" if new_type == "float64" else f"{new_type}({lit})"
            at = line_start + m.end("pre")
            return Edit(at, at + len(lit), new, "conversions",
                        f"{line.strip()} → {line[m.start('pre'):m.end('pre')].strip()} {new}")
        line_end = line_start - 1
    return None


def use_unused_vars(src: str, spots: Iterable[tuple[int, int, str]]) -> tuple[str, list[str]]:
    """Mark each `declared and not used` variable (line, byte column, name) as used with
    `_ = name` right after its declaration, as gopls offers to: the answer then reaches
    the tests, which judge whether the variable was meant to matter. A spot that is not
    where the compiler said, or an edit gofmt cannot parse, is left alone."""
    src, done = apply_checked(src, _unused_var_edits(src, spots))
    return src, [e.detail.split()[0] for e in done]


def convert_values(src: str, spots: Iterable[tuple[int, int, str, str]]
                   ) -> tuple[str, list[str]]:
    """Apply the conversion the compiler names exactly, at (line, byte column, expression,
    replacement) where the source holds that expression: a numeric value of the wrong
    basic type is converted (`int(c - 'a')`), a method value where its result was wanted
    is called (`a.Balance()`)."""
    src, done = apply_checked(src, _conversion_edits(src, spots))
    return src, [e.detail for e in done]


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str
    fix: str  # one of EDIT_FIXES
    detail: str
    receiver: tuple[str, str] | None = None  # (type, method) a receiver edit is for


def apply_checked(src: str, edits: list[Edit]) -> tuple[str, list[Edit]]:
    """Apply the edits (positions in `src`), each only if gofmt still parses the result;
    the applied ones, in source order. Overlapping edits: the later one wins."""
    done: list[Edit] = []
    end = len(src) + 1
    # From the end backwards, so each edit leaves the earlier offsets valid.
    for e in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        if e.end > end:
            continue
        new = src[:e.start] + e.text + src[e.end:]
        try:
            if gofmt_source(new) is None:
                continue
        except ToolchainError:
            pass  # no gofmt to vet the edit with: the compiler will
        src, end = new, e.start
        done.append(e)
    return src, done[::-1]


# value-forms, call-forms and name-clash are made by agent/golang/valueforms.py,
# callforms.py and clashes.py, which build on these edits.
EDIT_FIXES = ("unused-decls", "unused-vars", "conversions", "printf", "extra-results",
              "value-forms", "call-forms", "name-clash")


def compiler_edits(src: str, diagnostics: Iterable[Diagnostic],
                   enabled: Iterable[str] = EDIT_FIXES) -> list[Edit]:
    """The edits the enabled fixes make to `src` for the diagnostics located in it."""
    on = set(enabled)
    unused: list[tuple[int, int, str]] = []
    replace: list[tuple[int, int, str, str]] = []
    mismatched: list[tuple[int, int, str, str, str]] = []
    retyped: list[Edit] = []
    verbs: list[Edit] = []
    chars: list[Edit] = []
    blanks: list[Edit] = []
    for d in diagnostics:
        first = d.message.splitlines()[0].strip() if d.message else ""
        if not (d.line and d.column):
            continue
        if m := _UNUSED_VAR_RE.match(first):
            unused.append((d.line, d.column, m["name"]))
        elif _ONE_OF_TWO_RE.match(first) and (e := _blank_second(src, d.line, d.column)):
            blanks.append(e)
        elif ((m := _PRINTF_RE.match(first)) and (e := _verb_edit(src, d.line, d.column, m))
              ) or ((m := _PRINTF_ARITY_RE.match(first)) and int(m["have"]) > int(m["need"])
                    and (e := _more_verbs(src, d.line, d.column))):
            verbs.append(e)
        elif (m := _MISMATCH_RE.match(first)) and "…" not in m["expr"] and (
                {m["left"], m["right"]} <= _NUMERIC
                or {m["left"], m["right"]} in ({"string", "rune"}, {"string", "byte"})):
            mismatched.append((d.line, d.column, m["expr"], m["left"], m["right"]))
        elif m := (_CHAR_MISMATCH_RE.match(first) or _UNTYPED_STRING_RE.match(first)):
            if "…" not in m["expr"]:
                chars.extend(_char_literals(src, d.line, d.column, m["expr"]))
        elif m := _POINTER_RECEIVER_RE.match(first):
            if (e := _address_edit(src, d.line, d.column, m["expr"], m["method"])) is not None:
                retyped.append(e)
        elif (m := _CANNOT_USE_RE.match(first)) and "…" not in m["expr"]:
            expr, have, want = m["expr"], m["have"], m["want"]
            if m["call"] and have == want:
                replace.append((d.line, d.column, expr, f"{expr}()"))
            elif not m["call"] and (to := _TEXT_CONVERSIONS.get((have, want))):
                replace.append((d.line, d.column, expr, f"{to}({expr})"))
            elif not m["call"] and have != want and {have, want} <= _NUMERIC:
                if (have.startswith("float") and not want.startswith("float")
                        and first.endswith(" in assignment")
                        and (e := _retype_target(src, d.line, have)) is not None):
                    retyped.append(e)  # a float stored in an int variable: widen it
                else:
                    replace.append((d.line, d.column, expr, f"{want}({expr})"))
    edits = _unused_decl_edits(src, unused) if "unused-decls" in on else []
    if "unused-vars" in on:
        # A declaration removed needs no `_ = x`.
        gone = {e.detail.split()[0] for e in edits}
        edits += _unused_var_edits(src, [u for u in unused if u[2] not in gone])
    if "conversions" in on:
        edits += (_conversion_edits(src, replace) + _mismatch_edits(src, mismatched) + retyped
                  + chars)
    if "printf" in on:
        edits += verbs
    if "extra-results" in on:
        edits += blanks
    return edits


# `n := strconv.Atoi(s)`: the call's second result (an error, or ok) was left out. The
# compiler says so in one of two ways, both placed at the call.
_ONE_OF_TWO_RE = re.compile(r"^(?:assignment mismatch: 1 variable but .+ returns 2 values|"
                            r"multiple-value .+ \(value of type \([^,()]+, [^,()]+\)\) in "
                            r"single-value context)$")


def _call_ends_line(src: str, off: int) -> bool:
    """Whether the call starting at `off` is all that is left of its statement's line: its
    arguments may run over several lines; after its `)` only a `;` may stand."""
    rest = tokenize(src[off:])
    depth = 0
    for i, t in enumerate(rest):
        depth += (t.text in "([{") - (t.text in ")]}")
        if t.text == ")" and depth == 0:
            eol = src.find("\n", off + t.end)
            after = [x.text for x in rest[i + 1:]
                     if eol < 0 or off + x.start < eol]
            return after in ([], [";"])
    return False


def _blank_second(src: str, line: int, col: int) -> Edit | None:
    """`x := f()` (or `x = f()`, `var x = f()`) where f returns two values: `x, _ := f()`.
    Only a lone name assigned the call, nothing else on the line before it. The code then
    builds and its tests run; they, not this, judge whether the dropped value mattered."""
    off = byte_offset(src, line, col)
    if off is None:
        return None
    begin = src.rfind("\n", 0, off) + 1
    toks = tokenize(src[begin:off])
    if toks and toks[0].text == "var":
        toks = toks[1:]
    if [t.text for t in toks[1:]] not in ([":", "="], ["="]) or toks[0].kind != "ident":
        return None
    if not _call_ends_line(src, off):
        return None  # `x := f() * 10`: the call is part of the value (call-forms hoists it)
    name, at = toks[0].text, begin + toks[0].end
    return Edit(at, at, ", _", "extra-results", f"{name} → {name}, _ (the second result dropped)")


_CHAR_MISMATCH_RE = re.compile(r"^invalid operation: (?P<expr>.+) \(mismatched types "
                               r"(?:(?:rune|byte) and untyped string|untyped string and "
                               r"(?:rune|byte))\)$")


def _char_literals(src: str, line: int, col: int, expr: str) -> list[Edit]:
    """`r == "a"` with r a rune or byte: the one-character string literal in `expr` (at
    line, byte column, or just before it) becomes the rune literal `'a'`. Only when the
    expression holds exactly one such literal, so which side meant a character is clear."""
    off = byte_offset(src, line, col)
    want = [t.text for t in tokenize(expr)]
    if off is None or not want:
        return []
    toks = tokenize(src)
    k = next((i for i, t in enumerate(toks) if t.start >= off), None)
    if k is None:
        return []
    span = next((toks[i:i + len(want)] for i in range(k, max(k - len(want), -1), -1)
                 if [t.text for t in toks[i:i + len(want)]] == want), None)
    lits = [t for t in span or [] if t.kind == "string" and _ONE_CHAR_STRING_RE.match(t.text)]
    if len(lits) != 1:
        return []
    t = lits[0]
    char = f"'{t.text[1:-1]}'"
    return [Edit(t.start, t.end, char, "conversions", f"{t.text} → {char} (a rune literal)")]


def _verb_edit(src: str, line: int, col: int, m: re.Match[str]) -> Edit | None:
    """A printf verb that does not fit its argument becomes the one that prints the value
    as meant: `%c` for a rune given to `%s`, else `%v` (the value's default format). A
    verb with a precision is left alone: on an integer `%.2v` pads with zeros, which no
    `%.2f` ever meant."""
    verb, typ = m["verb"], m["type"]
    start = byte_offset(src, line, col)
    if start is None or not src.startswith(verb, start) or "." in verb:
        return None
    letter = "c" if typ in ("rune", "int32") and verb[-1] in "sq" else "v"
    if letter == verb[-1]:
        return None
    end = start + len(verb)
    detail = f"{verb} → {verb[:-1]}{letter} for {m['arg']} ({typ})"
    # vet names one fault a call: a missing verb it would name next is added now, so
    # never-worse judges the call made whole, not one fault traded for the other.
    if (more := _more_verbs(src, line, col)) is not None:
        return Edit(start=end - 1, end=more.end, text=letter + src[end:more.end] + more.text,
                    fix="printf", detail=f"{detail}; {more.detail}")
    return Edit(start=end - 1, end=end, text=letter, fix="printf", detail=detail)


def _more_verbs(src: str, line: int, col: int) -> Edit | None:
    """`%v` added to a verbs-only format for each value past its verbs: `Sprintf("%s%s",
    a, b, c)` prints a, b and c. The position is the call's or a verb's in its format."""
    off = byte_offset(src, line, col)
    if off is None:
        return None
    toks = tokenize(src)
    k = next((i for i, t in enumerate(toks) if t.start <= off < t.end), None)
    if k is None:
        return None
    if toks[k].kind != "string":  # at the call: its format is the first argument
        k = next((i for i in range(k, min(k + 6, len(toks) - 1))
                  if toks[i].text == "(" and toks[i + 1].kind == "string"), None)
        if k is None:
            return None
        k += 1
    lit = toks[k]
    if k < 1 or toks[k - 1].text != "(" or not _VERBS_ONLY_RE.match(lit.text):
        return None
    verbs = lit.text.count("%")
    depth, values = 0, 0
    for t in toks[k + 1:]:
        if t.text in "([{":
            depth += 1
        elif t.text in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and t.text == ",":
            values += 1
        elif depth == 0 and t.text == "." and src.startswith("...", t.start):
            return None  # a spread slice: how many values it holds is not known here
    else:
        return None
    if values <= verbs:
        return None
    extra = "%v" * (values - verbs)
    quote = lit.end - 1
    return Edit(start=quote, end=quote, text=extra, fix="printf",
                detail=f"{lit.text} given {values} values → {lit.text[:-1]}{extra}\"")


_ASSIGN_LINE_RE = re.compile(r"^[ \t]*(?P<name>[A-Za-z_]\w*)[ \t]*(?:[-+*/%|&^]|<<|>>|&\^)?=[^=]")


def _retype_target(src: str, line: int, new_type: str) -> Edit | None:
    """The declaration change for `x = <float>` at `line`, where x is a simple local."""
    lines = src.split("\n")
    if not 1 <= line <= len(lines) or not (m := _ASSIGN_LINE_RE.match(lines[line - 1])):
        return None
    at = sum(len(x) + 1 for x in lines[:line - 1]) + m.start("name")
    return retype_declaration(src, m["name"], at, new_type)


def _address_edit(src: str, line: int, col: int, expr: str, method: str) -> Edit | None:
    """`Rect{…}` or a variable `r` used where an interface is wanted, when the type has
    `method` only on its pointer: its address (`&Rect{…}`, `&r`), which has the method.
    Only a composite literal or a variable: anything else has no address to take."""
    at = byte_offset(src, line, col)
    if at is None:
        return None
    want = [t.text for t in tokenize(expr.removesuffix("{…}"))]
    toks = tokenize(src[at:at + 200])[:len(want) + 1]
    if [t.text for t in toks[:len(want)]] != want or toks[0].start != 0:
        return None
    if expr.endswith("{…}") != (len(toks) > len(want) and toks[len(want)].text == "{"):
        return None
    return Edit(at, at, "&", "conversions",
                f"{expr} → &{expr} ({method} has a pointer receiver)")


_NEEDS_POINTER_RE = re.compile(r"\b(?P<type>[A-Za-z_]\w*) does not implement [\w.]+ \(method "
                               r"(?P<method>\w+) has pointer receiver\)")
_WRITE_OPS = frozenset({"=", "++", "--"})


def pointer_needed(message: str) -> tuple[str, str] | None:
    """(type, method) of a `… (method M has pointer receiver)` message."""
    m = _NEEDS_POINTER_RE.search(message or "")
    return (m["type"], m["method"]) if m else None


def receiver_edits(src: str, diagnostics: Iterable[Diagnostic]) -> list[Edit]:
    """`T does not implement I (method M has pointer receiver)`, wherever the compiler says
    it (a test file the fix may not touch, too): when M is declared here on `*T` and
    changes nothing through its receiver, declare it on `T`, and every T has M. A method
    that writes through the receiver, calls a method on it, takes its address, or whose
    type holds a lock keeps its pointer: for those, `&` at the use (conversions) is right."""
    wanted = {p for d in diagnostics if (p := pointer_needed(d.message)) is not None}
    edits = []
    for typ, method in sorted(wanted):
        head = re.search(rf"func\s*\(\s*(?P<recv>[A-Za-z_]\w*)\s+(?P<star>\*)\s*{typ}\s*\)\s*"
                         rf"{method}\s*\(", src)
        if head is None or _holds_lock(src, typ):
            continue
        body = _body_tokens(src, head.end())
        if body is None or _writes_through(body, head["recv"]):
            continue
        edits.append(Edit(head.start("star"), head.end("star"), "", "conversions",
                          f"func ({head['recv']} *{typ}) {method} → func ({head['recv']} {typ}) "
                          f"{method} (it changes nothing through {head['recv']})",
                          receiver=(typ, method)))
    return edits


def _body_tokens(src: str, at: int) -> list[Token] | None:
    """The tokens of the function body that follows `at` (its parameters' open paren)."""
    toks = tokenize(src[at:])
    depth, start = 1, None
    for i, t in enumerate(toks):
        if start is None:
            # Before the body: parameters, results, and the braces of a result type
            # (`interface{}`, `struct{…}`), which are no body.
            if t.text in "([" or (t.text == "{" and i and toks[i - 1].text in (
                    "interface", "struct")):
                depth += 1
            elif t.text in ")]}":
                depth -= 1
            elif t.text == "{" and depth == 0:
                start, depth = i, 1
            continue
        if start is not None:
            depth += (t.text == "{") - (t.text == "}")
            if depth == 0:
                return toks[start + 1:i]
    return None


def _writes_through(body: list[Token], recv: str) -> bool:
    """The body may change what `recv` points to: an assignment or increment of it or of
    something reached through it, its address taken, a dereference, a method called on
    it. Deliberately wary: a false alarm only keeps the pointer receiver."""
    depth = 0  # parentheses: inside a call's arguments a comma is no assignment
    for i, t in enumerate(body):
        depth += (t.text == "(") - (t.text == ")")
        if t.text != recv or (i and body[i - 1].text == "."):
            continue
        if i and body[i - 1].text in ("&", "*") and not _operand(body[i - 2] if i > 1 else None):
            return True  # &recv or *recv: its address taken, or the pointer itself used
        j = i + 1
        while j + 1 < len(body) and body[j].text in (".", "["):
            if body[j].text == "[":
                level = 0
                while j < len(body):
                    level += (body[j].text == "[") - (body[j].text == "]")
                    j += 1
                    if level == 0:
                        break
            else:
                j += 2
        if j == i + 1:
            return True  # the pointer itself passed on or returned
        nxt = body[j].text if j < len(body) else ""
        after = body[j + 1].text if j + 1 < len(body) else ""
        if nxt == "(":
            return True  # a method called on it (or on a field): it may write
        if (nxt == "=" and after != "=") or (nxt == ":" and after == "=") or (
                nxt in "+-*/%&|^" and nxt and after in ("=", nxt)):
            return True  # assigned, incremented, or an operator-assignment
        if nxt == "," and depth == 0:
            return True  # one of several assigned at once
    return False


def _operand(t: Token | None) -> bool:
    """A token after which `*` or `&` is multiplication or a bitwise and, not unary."""
    if t is None:
        return False
    return (t.kind in ("ident", "number", "string") and t.text not in ("return", "case")) or (
        t.text in (")", "]"))


def _holds_lock(src: str, typ: str) -> bool:
    """The struct declares a field from package sync (copied with a value receiver)."""
    m = re.search(rf"\btype\s+{typ}\s+struct\s*\{{", src)
    if m is None:
        return False
    end = src.find("}", m.end())
    return "sync." in src[m.end():end if end >= 0 else len(src)]
