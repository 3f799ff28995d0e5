"""What a Go type error means, said the way a small model can act on it (`type-facts`).

The compiler names the types and stops there: `cannot use w (variable of type string) as
rune value`, `multiple-value strconv.Atoi(s) (value of type (int, error)) in
single-value context`. The 0.5B and 1.5B answer such a message with the same line again,
because what they lack is the Go idiom that gets from one type to the other: `range` or
`[]rune(s)` for a string's characters, `strconv` between text and numbers, two values
taken on a line of their own. Each rule below matches one message class of the real
compiler and states that idiom, with the code from the message filled in; every idiom it
names is checked against the toolchain in tests/test_type_facts.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from tools.diagnostics import Diagnostic, Kind

MAX_TYPE_FACTS = 3
_MAX_EXPR = 60  # longer expressions are described, not quoted

_INTS = ("int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32",
         "uint64")
_NUMBERS = (*_INTS, "float32", "float64")
_VALUE = r"\((?:variable|value|constant) of (?:\w+ )?type (?P<have>[^)]+)\)"

_CANNOT_USE = re.compile(rf"^cannot use (?P<expr>.+?) {_VALUE} as (?P<want>\S+) value in ")
_UNTYPED_STRING = re.compile(r'^cannot use (?P<expr>".*") \(untyped string constant\) as '
                             r"(?P<want>rune|byte|int32|uint8) value in ")
_CONVERT = re.compile(rf"^cannot convert (?P<expr>.+?) {_VALUE} to type (?P<want>\S+)$")
_MULTI = re.compile(r"^multiple-value (?P<call>.+) \(value of type \((?P<types>[^)]*)\)\) in "
                    r"single-value context$")
_RETURN_COUNT = re.compile(r"^(?:not enough|too many) return values\s+have \([^)]*\)\s+"
                           r"want \((?P<want>[^)]*)\)$")
_NIL = re.compile(r"^cannot use nil as (?P<want>\S+) value in ")
_RUNE_LITERAL = "more than one character in rune literal"
_OPERATOR = re.compile(r"^invalid operation: operator (?P<op>\S+) not defined on (?P<expr>.+?) "
                       rf"{_VALUE}$")
_COMPARE = re.compile(r"^invalid operation: .+ \((?P<kind>map|slice|func) can only be "
                      r"compared to nil\)$")
_NO_VALUE = re.compile(r"^(?P<call>.+) \(no value\) used as value$")
_MISMATCH = re.compile(r"^invalid operation: (?P<expr>.+) \(mismatched types "
                       r"(?P<left>untyped \w+|\w+) and (?P<right>untyped \w+|\w+)\)$")
_ASSIGN = re.compile(r"^cannot assign to (?P<expr>(?P<base>[A-Za-z_]\w*)\[(?P<index>.+)\]) "
                     r"\(neither addressable nor a map index expression\)$")


def _code(expr: str, what: str) -> str:
    return f"`{expr}`" if len(expr) <= _MAX_EXPR and "`" not in expr else what


def _string_to_char(expr: str, want: str) -> str:
    char = "byte" if want in ("byte", "uint8") else "rune"
    return (f"{_code(expr, 'that value')} is a string, but a {char} (one character) is "
            f"needed here. A string's runes come from `for _, r := range s` or "
            f"`[]rune(s)[i]`, its bytes from `s[i]`; a character literal takes single "
            f"quotes ('a'), a string double quotes (\"a\").")


def _number_to_string(expr: str, have: str) -> str:
    text = "strconv.Itoa(n)" if have == "int" else "strconv.FormatInt(int64(n), 10)"
    if have.startswith("float"):
        text = "strconv.FormatFloat(x, 'f', -1, 64)"
    return (f"{_code(expr, 'that value')} is a number ({have}), not text: {text} (package "
            f"strconv) or fmt.Sprint(n) writes its digits; string(n) would instead be the "
            f"one character with that code.")


def _string_to_number(expr: str, want: str) -> str:
    if want == "int":
        how = "`n, err := strconv.Atoi(s)`"
    elif want.startswith("float"):
        how = f"`x, err := strconv.ParseFloat(s, {want[5:]})`"
    elif want.startswith("uint"):
        how = f"`n, err := strconv.ParseUint(s, 10, {want[4:] or 64})`"
    else:
        how = f"`n, err := strconv.ParseInt(s, 10, {want[3:] or 64})`"
    return (f"{_code(expr, 'that value')} is a string: Go has no conversion from text to a "
            f"number ({want}). Parse it with {how} (package strconv) on a line of its own; "
            f"err is non-nil when the text is not a number.")


def _cannot_use(m: re.Match[str]) -> str | None:
    expr, have, want = m["expr"], m["have"], m["want"]
    if have == "string" and want in ("rune", "byte", "int32", "uint8"):
        return _string_to_char(expr, want)
    if have in _NUMBERS and have not in ("rune", "byte") and want == "string":
        return _number_to_string(expr, have)
    if have == "string" and want in _NUMBERS:
        return _string_to_number(expr, want)
    return None


def _untyped_string(m: re.Match[str]) -> str:
    return _string_to_char(m["expr"], m["want"])


def _convert(m: re.Match[str]) -> str | None:
    if m["have"] == "string" and m["want"] in _NUMBERS:
        return _string_to_number(m["expr"], m["want"])
    return None


def _multi(m: re.Match[str]) -> str:
    types = [t.strip() for t in m["types"].split(",")]
    names = ["v", "err"] if len(types) == 2 and types[1] == "error" else [
        f"v{i + 1}" for i in range(len(types))]
    call = m["call"] if len(m["call"]) <= _MAX_EXPR else "…"
    return (f"{_code(m['call'], 'that call')} returns {len(types)} values ({m['types']}), and "
            f"such a call cannot be used inside an expression or as one value. Take them on "
            f"a line of their own, `{', '.join(names)} := {call}`"
            + (", check err, then use v." if names[-1] == "err" else ", then use them."))


def zero_value(typ: str) -> str:
    """The literal a `return` can give for a result of type `typ`."""
    typ = typ.strip()
    if typ in _NUMBERS or typ in ("rune", "byte", "uintptr"):
        return "0"
    if typ == "string":
        return '""'
    if typ == "bool":
        return "false"
    if typ in ("error", "any", "interface{}") or typ.startswith(("*", "[]", "map[", "chan ",
                                                                  "func(")):
        return "nil"
    return f"{typ}{{}}"


def _return_count(m: re.Match[str]) -> str:
    want = [t.strip() for t in m["want"].split(",") if t.strip()]
    example = ", ".join(zero_value(t) for t in want)
    return (f"This function's results are ({m['want']}): every `return` in it must give "
            f"exactly {len(want)} value{'s' if len(want) != 1 else ''} in that order, for "
            f"example `return {example}`.")


def _nil(m: re.Match[str]) -> str | None:
    want = m["want"]
    zero = zero_value(want)
    if zero == "nil":
        return None
    return (f"nil is not a value of type {want}; its zero value is `{zero}`. A function "
            f"that returns ({want}, error) reports a failure with `return {zero}, err`.")


def _rune_literal(_: re.Match[str] | None) -> str:
    return ("Single quotes make a rune literal, exactly one character ('a', '\\n'); text of "
            "several characters takes double quotes (\"ab\") and is a string.")


def _operator(m: re.Match[str]) -> str | None:
    if m["op"] == "+" and m["have"].startswith("[]"):
        return ("Slices cannot be joined with +: `append(a, b...)` appends every element "
                "of b to a (start from `append([]T{}, a...)` if a must stay unchanged).")
    if m["have"].startswith("map["):
        return f"A map has no operator {m['op']}: loop over it with for k, v := range m."
    return None


def _compare(m: re.Match[str]) -> str:
    pkg = {"map": "maps", "slice": "slices"}.get(m["kind"])
    tail = f" `{pkg}.Equal(a, b)` (package {pkg}) compares two of them." if pkg else ""
    return f"A {m['kind']} can only be compared to nil with == or !=.{tail}"


def _no_value(m: re.Match[str]) -> str:
    return (f"{_code(m['call'], 'that call')} returns nothing: it works in place. Call it on "
            f"a line of its own, then use the value it changed.")


def _mismatch(m: re.Match[str]) -> str | None:
    types = {m["left"].removeprefix("untyped "), m["right"].removeprefix("untyped ")}
    if "string" in types and types & {"rune", "byte", "int32", "uint8"}:
        return ("A rune or byte is a number, a string is text: compare a character with a "
                "single-quoted literal ('a', not \"a\"), and join one to a string with "
                "string(r).")
    if "string" in types and types & {*_NUMBERS, "int", "float"}:
        return ("Go never joins text and numbers with +: strconv.Itoa(n) (package strconv) or "
                "fmt.Sprint(n) gives a number's digits as a string; strconv.Atoi(s) parses "
                "a string into an int.")
    return None


def _assign(m: re.Match[str], src: str) -> str | None:
    base = re.escape(m["base"])
    if ":" in m["index"]:
        return (f"A slice expression such as {_code(m['expr'], 'that one')} cannot be "
                f"assigned to: `copy(dst[i:], src)` copies elements into it.")
    declared = re.search(rf"\b{base}\s+string\b|\b{base}\s*:=\s*(?:\"|`|strings\.|fmt\.Sprint)",
                         src)
    if declared:
        return (f"{m['base']} is a string, and Go strings cannot be changed in place. "
                f"Change a copy, `b := []byte({m['base']})` (or []rune for characters beyond "
                f"ASCII), then `{m['base']} = string(b)`.")
    return None


_IMPLEMENT = re.compile(r"(?P<type>[\w.]+) does not implement (?P<iface>[\w.]+) \((?:method "
                        r"(?P<ptr>\w+) has pointer receiver|missing method (?P<missing>\w+)|"
                        r"wrong type for method (?P<wrong>\w+))\)(?:\s+have (?P<have>.+?)"
                        r"\s+want (?P<want>.+))?$", re.S)


def _implement(m: re.Match[str]) -> str:
    t, iface = m["type"], m["iface"]
    if name := m["ptr"]:
        return (f"{t} values are not {iface} values: method {name} has a pointer receiver "
                f"(`func (x *{t}) {name}…`), so only *{t} has it. Declare it with a value "
                f"receiver, `func (x {t}) {name}…`, and both {t} and *{t} implement {iface} "
                f"(or use &{t}{{…}} where a {iface} is needed).")
    if name := m["missing"]:
        return (f"{t} has no method {name}, and {iface} requires it: declare "
                f"`func (x {t}) {name}…` with exactly the parameters and results {iface} "
                f"gives it.")
    want = " ".join((m["want"] or "").split())
    have = " ".join((m["have"] or "").split())
    return (f"{t}'s method {m['wrong']} must have exactly the signature {iface} gives it: "
            f"`{want}`, not `{have}`." if want and have else
            f"{t}'s method {m['wrong']} must have exactly the signature {iface} gives it.")


_Rule = Callable[[re.Match[str]], str | None]
_RULES: list[tuple[re.Pattern[str], _Rule]] = [
    (_CANNOT_USE, _cannot_use), (_UNTYPED_STRING, _untyped_string), (_CONVERT, _convert),
    (_MULTI, _multi), (_RETURN_COUNT, _return_count), (_NIL, _nil),
    (_OPERATOR, _operator), (_COMPARE, _compare), (_NO_VALUE, _no_value),
    (_MISMATCH, _mismatch),
]


def fact_for(message: str, src: str = "") -> str | None:
    """The fact for one compiler message (its text as `go build` prints it), or None."""
    text = message.strip()
    if text.startswith(_RUNE_LITERAL):
        return _rune_literal(None)
    if m := _ASSIGN.match(text.splitlines()[0] if text else ""):
        return _assign(m, src)
    if m := _IMPLEMENT.search(text):
        return _implement(m)
    for pattern, rule in _RULES:
        if (m := pattern.match(text)) and (fact := rule(m)):
            return fact
    return None


def type_facts(diagnostics: Iterable[Diagnostic], files: dict[str, str]) -> list[str]:
    """At most MAX_TYPE_FACTS facts for the compile errors, one per distinct fact."""
    out: list[str] = []
    for d in diagnostics:
        if d.kind is not Kind.compile or not d.message:
            continue
        fact = fact_for(d.message, files.get(d.file or "", ""))
        if fact and fact not in out:
            out.append(fact)
            if len(out) >= MAX_TYPE_FACTS:
                break
    return out
