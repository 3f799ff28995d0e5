"""Function signatures a task pins, against the ones an answer declares.

Tests call the task's functions as the task declares them. A small model that changes a
result type (`[]string` where `map[string]int` was asked for) reads the resulting compile
error in the test file as a problem with the tests, and writes the same signature again,
in repair rounds and fresh samples alike. Told plainly which signature the task declares
and which one its code has, it has something to act on. Parameter names do not matter to
a caller, so signatures are compared by their types only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.golang.source import strip_comments

# `func Name(` or `func (r *T) Name(` at the start of a line: a declaration, in prose,
# in a code block or indented as one.
_FUNC_RE = re.compile(
    r"^[ \t]*func[ \t]*(?:\((?P<recv>[^()]*)\)[ \t]*)?(?P<name>[A-Za-z_]\w*)[ \t]*"
    r"(?P<tparams>\[[^\]\n]*\])?[ \t]*\(", re.M)
_KEYWORD_TYPES = ("func", "map", "chan", "struct", "interface")
# Functions a prompt may show that the answer is not asked to write.
_NOT_ASKED = re.compile(r"^(main|init|(Test|Benchmark|Example|Fuzz)([A-Z_]\w*)?)$")


@dataclass(frozen=True)
class Signature:
    key: str  # `Name`, or `T.Name` for a method (the receiver's base type)
    text: str  # as written: `func Name(a, b int) (int, error)`
    shape: str  # the types only, spacing normalised: what a caller depends on
    params: tuple[str, ...] = ()  # the parameter types, one per parameter
    results: tuple[str, ...] = ()
    generic: bool = False


def declared(source: str) -> dict[str, Signature]:
    """The function and method signatures declared in Go source or in a task's prose,
    by key; the first declaration of a name wins. A signature that does not parse (cut
    off, or prose that only looks like one) is left out."""
    out: dict[str, Signature] = {}
    text = strip_comments(source)
    for m in _FUNC_RE.finditer(text):
        sig = _parse(text, m)
        if sig is not None:
            out.setdefault(sig.key, sig)
    return out


def mismatches(task: str, files: dict[str, str], messages: list[str],
               max_facts: int = 3) -> list[str]:
    """Facts for the functions the task declares that the answer declares with other
    types, or leaves out where the compiler calls them undefined (`messages`: the failing
    check's compile messages). `files` are every non-test file the package holds."""
    want = {k: s for k, s in declared(task).items() if not _NOT_ASKED.match(k.split(".")[-1])}
    if not want:
        return []
    have: dict[str, tuple[str, Signature]] = {}
    for name, src in sorted(files.items()):
        if name.endswith("_test.go"):
            continue
        for key, sig in declared(src).items():
            have.setdefault(key, (name, sig))
    undefined = " ".join(messages)
    facts = []
    for key, sig in want.items():
        got = have.get(key)
        name = key.split(".")[-1]
        if got is None and re.search(rf"undefined: {name}\b|\.{name} undefined|"
                                     rf"no field or method {name}\b", undefined):
            facts.append(f"The task declares `{sig.text}`, and your code does not define "
                         f"{key}: the tests call it by that name and signature.")
        elif got is not None and got[1].shape != sig.shape:
            facts.append(f"The task declares `{sig.text}`; {got[0]} declares "
                         f"`{got[1].text}`. The tests call the task's signature: keep its "
                         "parameter and result types exactly.")
    return facts[:max_facts]


def _parse(text: str, m: re.Match[str]) -> Signature | None:
    params_end = _close(text, m.end() - 1)
    if params_end is None:
        return None
    params = text[m.end():params_end]
    rest = text[params_end + 1:]
    results, length = _results(rest)
    if results is None:
        return None
    recv = _receiver_type(m["recv"]) if m["recv"] is not None else None
    if m["recv"] is not None and recv is None:
        return None
    param_types = _types(params)
    result_types = _types(results[1:-1]) if results.startswith("(") else (
        [_norm(results)] if results else [])
    if param_types is None or result_types is None:
        return None
    key = f"{recv}.{m['name']}" if recv else m["name"]
    tparams = m["tparams"] or ""
    shape = f"{tparams}({', '.join(param_types)}) ({', '.join(result_types)})"
    written = " ".join(text[m.start():params_end + 1 + length].split()).rstrip(" {")
    return Signature(key=key, text=written, shape=shape, params=tuple(param_types),
                     results=tuple(result_types), generic=bool(tparams))


def _close(text: str, open_at: int) -> int | None:
    """The index of the bracket closing the one at `open_at`."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = []
    for i in range(open_at, min(len(text), open_at + 2000)):
        c = text[i]
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")]}":
            if not stack or stack.pop() != c:
                return None
            if not stack:
                return i
    return None


def _results(rest: str) -> tuple[str | None, int]:
    """The result list after the parameters (`int`, `(int, error)` or ``) and how many
    characters of `rest` it spans; None when the line does not end like a declaration."""
    stripped = rest.lstrip(" \t")
    skip = len(rest) - len(stripped)
    if stripped.startswith("("):
        end = _close(stripped, 0)
        if end is None:
            return None, 0
        after = stripped[end + 1:].lstrip(" \t")
        if after and after[0] not in "{\n;":
            return None, 0
        return stripped[:end + 1], skip + end + 1
    line = stripped.split("\n", 1)[0]
    body = line.find("{")
    # `{` opens the body unless it belongs to the result type (`struct{}`, `interface{}`).
    while body != -1 and re.search(r"(struct|interface)\s*$", line[:body]):
        close = _close(line, body)
        body = line.find("{", close + 1) if close is not None else -1
    result = (line[:body] if body != -1 else line).strip()
    if result and not _one_type(result):
        return None, 0  # prose after the parentheses: not a declaration
    return result, skip + len(line[:body] if body != -1 else line.rstrip())


def _one_type(t: str) -> bool:
    """Whether `t` reads as one Go type: words joined by punctuation, where a space at the
    top level only follows `chan` or a function type's parameters."""
    if not re.fullmatch(r"[\w.*\[\]{}() ,<-]+", t):
        return False
    flat = re.sub(r"\([^()]*\)|\[[^\[\]]*\]|\{[^{}]*\}", "", t)
    return " " not in flat.strip() or bool(re.match(r"(<-\s*)?chan\b|func\b", t))


def _receiver_type(recv: str) -> str | None:
    parts = recv.split()
    if not parts:
        return None
    base = parts[-1].lstrip("*")
    base = base.split("[", 1)[0]
    return base if re.fullmatch(r"[A-Za-z_]\w*", base) else None


def _split_top(s: str) -> list[str]:
    out, depth, cur = [], 0, []
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
    tail = "".join(cur).strip()
    if tail:
        out.append(tail)
    return out


def _types(params: str) -> list[str] | None:
    """The types of a parameter or result list, names dropped (`a, b int` → int, int)."""
    entries = _split_top(" ".join(params.split()))
    if any(not e for e in entries):
        return None
    named = []
    for e in entries:
        m = re.match(r"([A-Za-z_]\w*)\s+(\S.*)$", e)
        named.append(m if m and m[1] not in _KEYWORD_TYPES else None)
    if not any(named):  # all unnamed: every entry is a type
        return [_norm(e) for e in entries]
    types: list[str] = []
    pending = 0
    for e, m in zip(entries, named, strict=True):
        if m is None:
            if not re.fullmatch(r"[A-Za-z_]\w*", e):
                return None  # Go does not mix named and unnamed parameters
            pending += 1  # a name sharing the next entry's type
            continue
        types.extend([_norm(m[2])] * (pending + 1))
        pending = 0
    return None if pending else types


def _norm(t: str) -> str:
    t = " ".join(t.split())
    return re.sub(r"\s*([\[\]().,*{}])\s*", r"\1", t)
