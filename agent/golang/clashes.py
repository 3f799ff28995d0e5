"""A struct field and a method of one name: the field takes the lower-case name.

Models trained on Java and C# write a getter named after its field (`State State` in the
struct, `func (o *Order) State() State { return o.State }`), which Go rejects: `field and
method with the same name State`, then every use of the field reads as the method
(`cannot assign to o.State`, `mismatched types func() State and State`). The method is
the API a task or a caller asks for; the field is the answer's own. So the field is
renamed to its unexported spelling (`state`), with every use of it in the file: a
selector `x.State` that is not called, and a `State:` key in a literal of the struct's
type. The edit is made only when the name has one reading in the file (no other struct
declares a field of that name, and the lower-case name is not used already), and, as for
every compiler fix, kept only if the file still parses and (never-worse) the check
improves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agent.golang.tokens import Token, tokenize
from agent.golang.typefixes import Edit
from agent.golang.valueforms import enclosing
from tools.diagnostics import Diagnostic

FIX = "name-clash"

_CLASH_RE = re.compile(r"^field and method with the same name (?P<name>[A-Z]\w*)$")


def clash_edits(src: str, diagnostics: Iterable[Diagnostic]) -> list[Edit]:
    """The edits for the clashes the diagnostics name in `src`, each name once."""
    toks = tokenize(src)
    edits: list[Edit] = []
    done: set[str] = set()
    for d in diagnostics:
        first = d.message.splitlines()[0].strip() if d.message else ""
        m = _CLASH_RE.match(first)
        if m is None or m["name"] in done:
            continue
        done.add(m["name"])
        edits += _renamed(src, toks, m["name"])
    return edits


def _renamed(src: str, toks: list[Token], name: str) -> list[Edit]:
    owner = _method_owner(toks, name)
    if owner is None:
        return []
    lower = name[0].lower() + name[1:]
    if any(t.text == lower for t in toks):
        return []  # the new name would mean something already
    fields = _struct_fields(src, toks)
    holders = [t for t, names in fields.items() if name in names]
    if holders != [owner]:
        return []  # another struct has the field too: `x.Name` has two readings
    decl = fields[owner][name]
    detail = f"field {owner}.{name} → {lower} (a method is called {name})"
    edits = [Edit(decl.start, decl.end, lower, FIX, detail)]
    for k, t in enumerate(toks):
        if t.text != name or k == 0:
            continue
        nxt = toks[k + 1].text if k + 1 < len(toks) else ""
        selected = toks[k - 1].text == "." and nxt != "("  # a use of the field, not a call
        keyed = (nxt == ":" and toks[k - 1].text in ("{", ",")
                 and _literal_type(toks, k) == owner)
        if selected or keyed:
            edits.append(Edit(t.start, t.end, lower, FIX, detail))
    return edits


def _method_owner(toks: list[Token], name: str) -> str | None:
    """The receiver type of `func (r *T) name(`, when there is exactly one."""
    owners = set()
    for k in range(len(toks) - 1):
        if toks[k].text != "func" or toks[k + 1].text != "(":
            continue
        close = next((i for i in range(k + 2, min(k + 8, len(toks))) if toks[i].text == ")"),
                     None)
        if close is None or close + 2 >= len(toks):
            continue
        if toks[close + 1].text == name and toks[close + 2].text == "(":
            recv = [t.text for t in toks[k + 2:close] if t.kind == "ident"]
            if recv:
                owners.add(recv[-1])
    return owners.pop() if len(owners) == 1 else None


def _struct_fields(src: str, toks: list[Token]) -> dict[str, dict[str, Token]]:
    """Each `type T struct { … }` in the file: its fields' names, at their tokens (the
    first name on each line of the body, and names listed before it with commas)."""
    out: dict[str, dict[str, Token]] = {}
    for k in range(len(toks) - 3):
        if not (toks[k].text == "type" and toks[k + 1].kind == "ident"
                and toks[k + 2].text == "struct" and toks[k + 3].text == "{"):
            continue
        fields: dict[str, Token] = {}
        depth, expect_name, prev = 0, True, toks[k + 3]
        for t in toks[k + 4:]:
            if depth == 0 and t.text == "}":
                break
            if depth == 0 and "\n" in src[prev.end:t.start]:
                expect_name = True
            if depth == 0 and expect_name and t.kind == "ident":
                fields.setdefault(t.text, t)
                expect_name = False
            elif depth == 0 and t.text in (",", ";"):
                expect_name = True
            depth += (t.text in "([{") - (t.text in ")]}")
            prev = t
        out[toks[k + 1].text] = fields
    return out


def _literal_type(toks: list[Token], k: int) -> str | None:
    """The type name of the composite literal whose braces hold token k."""
    i = enclosing(toks, k)
    if i is None or toks[i].text != "{" or i == 0 or toks[i - 1].kind != "ident":
        return None
    return toks[i - 1].text
