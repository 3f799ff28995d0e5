"""Edge-input probes: what an answer returns for inputs next to the task's example.

When the example tests pass and the task's other tests fail, the model has been told only
that "other tests fail". It cannot act on that: asked to repair, it hands back the same
code; sampled afresh, it makes the same mistake. What it can act on is its own code's
behaviour on the inputs such tests are made of: the example's call with one argument at a
time moved to an edge of its type (empty, zero, negative, the most negative, non-ASCII,
one element, repeats). A panic or a hang is a fault whatever the task says; a returned
value the model checks against the task's rules. Nothing here knows any task: the calls
come from the task's declared signatures and its visible tests, the edges from Go types.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from agent.golang.panics import rule as panic_rule
from agent.golang.signatures import Signature, declared
from tools.diagnostics import CheckResult

MAX_CALLS = 12  # per probe: one test binary, each call under its own deadline
CALL_SECONDS = 2

_INTS = ("int", "int64", "int32", "int16", "int8")
_UINTS = ("uint", "uint64", "uint32", "uint16", "uint8", "uintptr")
_MIN = {"int": "-9223372036854775808", "int64": "-9223372036854775808",
        "int32": "-2147483648", "int16": "-32768", "int8": "-128"}
# Element values for slices: one element, then repeats with a negative or an empty one.
_ELEMS = {"int": ("7", "3, 1, 3, -2"), "string": ('"a"', '"b", "a", "b", ""'),
          "float64": ("1.5", "2, -0.5, 2"), "rune": ("'a'", "'b', 'a', 'b'"),
          "byte": ("'a'", "'b', 'a', 'b'"), "bool": ("true", "true, false, true")}
_PREDECLARED = frozenset((
    "bool", "byte", "complex64", "complex128", "error", "float32", "float64", "int", "int8",
    "int16", "int32", "int64", "rune", "string", "uint", "uint8", "uint16", "uint32",
    "uint64", "uintptr", "any", "true", "false", "nil", "map", "struct", "interface"))
_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|`[^`]*`|\'(?:[^\'\\\n]|\\.)+\'')
_IDENT = re.compile(r"(?<![\w.])[A-Za-z_]\w*")


def edges(typ: str) -> list[str]:
    """Go expressions at the edges of a type's values ([] for a type we do not vary)."""
    if typ == "string":
        return ['""', '"a"', '"Hé, 日!"', '"  a  b "']
    if typ in _INTS:
        return ["0", "1", "-1", _MIN[typ]]
    if typ in _UINTS:
        return ["0", "1"]
    if typ in ("float64", "float32"):
        return ["0", "-1.5"]
    if typ == "rune":
        return ["'é'", "' '"]
    if typ == "byte":
        return ["' '", "0"]
    if typ == "bool":
        return ["true", "false"]
    if typ.startswith("[]") and typ[2:] in _ELEMS:
        one, many = _ELEMS[typ[2:]]
        return ["nil", f"{typ}{{}}", f"{typ}{{{one}}}", f"{typ}{{{many}}}"]
    if typ.startswith("[][]") or typ.startswith("map["):
        return ["nil", f"{typ}{{}}"]
    return []


@dataclass(frozen=True)
class Call:
    text: str  # `Name(a, b)`, as the model is shown it
    results: tuple[str, ...]
    args: tuple[str, ...] = ()
    kept: tuple[int, ...] = ()  # arguments (slices, maps) the call must leave as they were


@dataclass(frozen=True)
class Probe:
    test: str  # the probe's test function, for a -run filter
    file: str  # its file name
    source: str
    calls: tuple[Call, ...]
    nonce: str


@dataclass(frozen=True)
class Finding:
    call: str
    kind: str  # value, panic, timeout, changed
    text: str  # the value, the panic's message, or `i after`: an argument and its value

    def line(self) -> str:
        if self.kind == "value":
            return f"`{self.call}` returned {self.text}"
        if self.kind == "changed":
            _, _, after = self.text.partition(" ")
            return (f"`{self.call}` changed the caller's argument: after the call it holds "
                    f"{after}. A function that returns its result must leave its input as "
                    "it was: work on a copy (`slices.Clone`, `maps.Clone`)")
        if self.kind == "timeout":
            return f"`{self.call}` did not return within {CALL_SECONDS} s (an endless loop?)"
        why = panic_rule(self.text)
        return f"`{self.call}` panicked: {self.text}" + (f" ({why})" if why else "")


def build(package: str, task_text: str, tests: dict[str, str], files: dict[str, str]
          ) -> Probe | None:
    """A test file calling the task's functions on edge inputs, or None when no function
    the task declares has a call to start from."""
    sigs = [s for k, s in declared(task_text).items()
            if "." not in k and not s.generic and s.results and s.params
            and not any(p.startswith("...") for p in s.params)
            and not re.match(r"(main|init|Test|Benchmark|Example|Fuzz)", k)]
    types = _declared_types(files)
    test_src = "\n".join(tests.values())
    # A function that returns its result leaves its input alone, unless told otherwise.
    in_place = re.search(r"\bin[- ]place\b", task_text, re.I) is not None
    calls: list[Call] = []
    examples: list[Call] = []
    for sig in sigs:
        base = _example_args(sig, test_src, types)
        if base is None:
            continue
        kept = () if in_place else tuple(
            i for i, t in enumerate(sig.params) if t.startswith(("[]", "map[")))

        def call_of(args: list[str], sig: Signature = sig, kept: tuple[int, ...] = kept
                    ) -> Call:
            return Call(text=f"{sig.key}({', '.join(args)})", results=sig.results,
                        args=tuple(args), kept=tuple(i for i in kept if args[i] != "nil"))

        for i, typ in enumerate(sig.params):
            for edge in edges(typ):
                if edge == base[i]:
                    continue
                call = call_of([*base[:i], edge, *base[i + 1:]])
                if call not in calls:
                    calls.append(call)
        if kept:  # the example's own input, the one most like the hidden tests' inputs
            examples.append(call_of(base))
    if not calls and not examples:
        return None
    calls = _spread(calls, MAX_CALLS) + examples[:2]
    nonce = secrets.token_hex(4)
    test = f"TestGuildProbe{nonce}"
    return Probe(test=test, file=f"zz_guild_probe_{nonce}_test.go",
                 source=_source(package, test, nonce, calls), calls=tuple(calls), nonce=nonce)


def read(probe: Probe, result: CheckResult) -> list[Finding]:
    """What each call did, from the probe run's output (calls with no line left out)."""
    text = "\n".join(d.message for d in result.diagnostics if d.message)
    found: dict[int, Finding] = {}
    for m in re.finditer(rf"^\s*guild{probe.nonce} (\d+) (value|panic|timeout|changed) ?(.*)$",
                         text, re.M):
        i = int(m[1])
        if i < len(probe.calls) and i not in found:
            found[i] = Finding(call=probe.calls[i].text, kind=m[2],
                               text=m[3].strip()[:300])
    return [found[i] for i in sorted(found)]


def _spread(calls: list[Call], cap: int) -> list[Call]:
    """At most `cap` calls, taken evenly so every parameter keeps some of its edges."""
    if len(calls) <= cap:
        return calls
    step = len(calls) / cap
    return [calls[int(i * step)] for i in range(cap)]


def _declared_types(files: dict[str, str]) -> set[str]:
    names: set[str] = set()
    for name, src in files.items():
        if not name.endswith("_test.go"):
            names.update(re.findall(r"^\s*type\s+([A-Za-z_]\w*)", src, re.M))
    return names


def _example_args(sig: Signature, tests: str, types: set[str]) -> list[str] | None:
    """The arguments of the first call of the function in the tests that stands on its
    own (literals, not the test's variables)."""
    for m in re.finditer(rf"(?<![\w.]){re.escape(sig.key)}\(", tests):
        end = _close_paren(tests, m.end() - 1)
        if end is None:
            continue
        args = _split_args(tests[m.end():end])
        if len(args) == len(sig.params) and all(_self_contained(a, types) for a in args):
            return args
    return None


def _self_contained(expr: str, types: set[str]) -> bool:
    if not expr or "\n" in expr or len(expr) > 200:
        return False
    bare = _LITERAL.sub('""', expr)
    return all(w in _PREDECLARED or w in types for w in _IDENT.findall(bare))


def _scan(text: str, at: int = 0) -> Iterator[tuple[int, str, int]]:
    """Each character outside string and rune literals, with the bracket depth after it."""
    depth, i = 0, at
    while i < len(text):
        if (m := _LITERAL.match(text, i)) is not None:
            i = m.end()
            continue
        c = text[i]
        depth += (c in "([{") - (c in ")]}")
        yield i, c, depth
        i += 1


def _close_paren(text: str, at: int) -> int | None:
    return next((i for i, c, depth in _scan(text, at) if c in ")]}" and depth == 0), None)


def _split_args(text: str) -> list[str]:
    out, start = [], 0
    for i, c, depth in _scan(text):
        if c == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out


def _show(var: str, typ: str) -> str:
    if typ in ("string", "rune", "byte"):
        return f'fmt.Sprintf("%q", {var})'
    if typ == "error":
        return (f'func() string {{ if {var} == nil {{ return "nil" }}; '
                f'return fmt.Sprintf("error(%q)", {var}.Error()) }}()')
    return f'fmt.Sprintf("%#v", {var})'


def _source(package: str, test: str, nonce: str, calls: list[Call]) -> str:
    body = []
    for i, c in enumerate(calls):
        names = [f"r{j}" for j in range(len(c.results))]
        shown = ' + ", " + '.join(_show(n, t) for n, t in zip(names, c.results, strict=True))
        # A composite literal written twice is two values: one to pass, one to compare.
        setup = "".join(f"a{k} := {c.args[k]}; b{k} := {c.args[k]}; " for k in c.kept)
        args = ", ".join(f"a{k}" if k in c.kept else a for k, a in enumerate(c.args)) \
            if c.args else c.text[c.text.index("(") + 1:-1]
        checks = "".join(f'if !reflect.DeepEqual(a{k}, b{k}) {{ return fmt.Sprintf('
                         f'"changed {k} %v", a{k}) }}; ' for k in c.kept)
        body.append(f"\ttry({i}, func() string {{ {setup}{', '.join(names)} := "
                    f"{c.text[:c.text.index('(')]}({args}); {checks}"
                    f'return "value " + {shown} }})')
    return f"""package {package}

import (
\t"fmt"
\t"reflect"
\t"testing"
\t"time"
)

var _ = reflect.DeepEqual

func {test}(t *testing.T) {{
\tvar out []string
\thung := false
\ttry := func(i int, call func() string) {{
\t\tif hung {{ // one hang is the finding; more would only add their deadlines
\t\t\treturn
\t\t}}
\t\tdone := make(chan string, 1)
\t\tgo func() {{
\t\t\tdefer func() {{
\t\t\t\tif r := recover(); r != nil {{
\t\t\t\t\tdone <- fmt.Sprintf("panic %v", r)
\t\t\t\t}}
\t\t\t}}()
\t\t\tdone <- call()
\t\t}}()
\t\tselect {{
\t\tcase s := <-done:
\t\t\tout = append(out, fmt.Sprintf("guild{nonce} %d %s", i, s))
\t\tcase <-time.After({CALL_SECONDS} * time.Second):
\t\t\thung = true
\t\t\tout = append(out, fmt.Sprintf("guild{nonce} %d timeout", i))
\t\t}}
\t}}
{chr(10).join(body)}
\tfor _, line := range out {{
\t\tt.Error(line)
\t}}
}}
"""
