"""What the code computed in a failing test: the values its assignments gave, line by line.

`got X, want Y` and even the lines that ran (`trace.py`) leave a small model to work
out in its head what each line computed, and it works that out wrong the same way it
wrote the bug. A debugger would show it. Here the model's own files get a call after
each simple assignment, appended on the same line so every line number stays as the
model wrote it, and the failing test runs once more: the values printed before its
first failure are shown next to the lines that produced them.

The instrumented code is model code and runs sandboxed like any other check; what it
prints steers feedback only. A print that imitates ours can only mislead its author.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agent.golang.source import decl_starts, strip_comments
from agent.golang.tokens import tokenize

MARK = "@@guild-value "
MAX_EVENTS = 300  # printed by the instrumented binary; later ones are dropped there
MAX_CALL_EVENTS = 40  # in one call from outside the code (a test's call)
MAX_LINES = 12  # source lines shown
MAX_HITS = 4  # values shown per line; the count and the last one stand for the rest
VALUE_CHARS = 48

_IDENT = r"[A-Za-z_]\w*"
_TARGET = rf"{_IDENT}(?:\.{_IDENT})*(?:\[[^\[\]()]+\])*"
_ASSIGN = re.compile(rf"^\s*(?P<lhs>{_TARGET}(?:\s*,\s*{_TARGET})*)\s*"
                     r"(?::=|=|\+=|-=|\*=|/=|%=|&=|\|=|\^=|<<=|>>=|&\^=)(?!=)")
_INCDEC = re.compile(rf"^\s*(?P<lhs>{_TARGET})\s*(?:\+\+|--)\s*$")
# A var with a value; without one it holds its type's zero value, which tells nothing.
_VAR = re.compile(rf"^\s*var\s+(?P<lhs>{_IDENT}(?:\s*,\s*{_IDENT})*)\b[^=]*=[^=]")
_KEYWORDS = frozenset({
    "break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough",
    "for", "func", "go", "goto", "if", "import", "interface", "map", "package", "range",
    "return", "select", "struct", "switch", "type", "var"})
# Tokens after which Go ends a statement at a newline (the spec's semicolon rule).
_ENDS = frozenset({")", "]", "}", "++", "--"})  # ++ and -- as the line ends, see points()
_ENDING_WORDS = frozenset({"break", "continue", "fallthrough", "return"})

_LOGGER = """

var guildValueCount, guildCallCount, guildDepth guildAtomic.Int64

func guildEnter() {
	if guildDepth.Add(1) == 1 && guildValueCount.Load() < {max_events} {
		guildCallCount.Store(0)
		guildFmt.Printf("\\n{mark}call\\n")
	}
}

func guildLeave() {
	guildDepth.Add(-1)
}

func guildValue(file string, line int, name string, v interface{}) {
	if guildCallCount.Add(1) > {max_call} || guildValueCount.Add(1) > {max_events} {
		return
	}
	var s string
	if t, ok := v.(string); ok {
		s = guildFmt.Sprintf("%q", t)
	} else {
		s = guildFmt.Sprintf("%v", v)
	}
	b := []byte(s)
	for i := range b {
		if b[i] == '\\n' || b[i] == '\\r' {
			b[i] = ' '
		}
	}
	if len(b) > {chars} {
		b = append(b[:{chars}], "..."...)
	}
	guildFmt.Printf("\\n{mark}%s %d %s %s\\n", file, line, name, b)
}
"""
_IMPORTS = '; import (guildFmt "fmt"; guildAtomic "sync/atomic")'
_ENTER = " guildEnter(); defer guildLeave();"


def _line_tokens(src: str) -> list[list[tuple[str, str, int]]]:
    """Per line (0-based), the tokens that start on it: (kind, text, end offset)."""
    starts = [0]
    for i, ch in enumerate(src):
        if ch == "\n":
            starts.append(i + 1)
    out: list[list[tuple[str, str, int]]] = [[] for _ in starts]
    line = 0
    for tok in tokenize(src):
        while line + 1 < len(starts) and starts[line + 1] <= tok.start:
            line += 1
        out[line].append((tok.kind, tok.text, tok.end))
    return out


def _ends_statement(kind: str, text: str) -> bool:
    if kind == "ident":
        return text not in _KEYWORDS or text in _ENDING_WORDS
    return kind in ("string", "number") or text in _ENDS


def _targets(code: str) -> list[str]:
    """The names an assignment line sets, blanks left out; [] when it is no assignment."""
    m = _ASSIGN.match(code) or _INCDEC.match(code) or _VAR.match(code)
    if not m:
        return []
    names = [n.strip() for n in m["lhs"].split(",")]
    if any(n.split(".")[0].split("[")[0] in _KEYWORDS for n in names):
        return []
    return [n for n in names if n != "_"]


def points(src: str) -> dict[int, list[str]]:
    """Line (1-based) → the names set there, for every one-line assignment statement
    inside a function body: the lines a call can follow without changing the code."""
    return {n: names for n, (names, _) in _layout(src)[0].items()}


def _layout(src: str) -> tuple[dict[int, tuple[list[str], int]], dict[int, int]]:
    """As `points`, with the column where each statement's code ends (before a comment);
    and line → column just after the `{` that opens each function body, when the
    signature's last line ends with it (gofmt's layout)."""
    lines = src.split("\n")
    toks = _line_tokens(src)
    bodies = [(start + 1, start + d.text.rstrip("\n").count("\n"))
              for start, d in decl_starts(src) if d.kind == "func"]
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln) + 1)
    out: dict[int, tuple[list[str], int]] = {}
    opened: dict[int, int] = {}
    depth = 0  # () and [] nesting at the start of each line
    fresh = True  # the line begins a statement
    for i, line_toks in enumerate(toks):
        start_depth, starts_stmt = depth, fresh
        for _kind, text, _end in line_toks:
            if text in "([":
                depth += 1
            elif text in ")]":
                depth = max(depth - 1, 0)
        if line_toks:
            kind, text, end = line_toks[-1]
            if text in "+-" and strip_comments(lines[i]).rstrip().endswith(("++", "--")):
                text = "++"  # the tokenizer splits operators into characters
            crosses = end > offsets[i + 1] - 1  # a raw string running on
            fresh = not crosses and depth == 0 and (
                _ends_statement(kind, text) or text in ("{", ";", ":"))
            complete = not crosses and depth == 0 and start_depth == 0 and starts_stmt and (
                _ends_statement(kind, text))
            inside = any(first < i + 1 <= last for first, last in bodies)
            code = src[offsets[i]:end]  # through the last token: a comment stays after
            if complete and inside and (names := _targets(code)):
                out[i + 1] = (names, end - offsets[i])
            if text == "{" and depth == 0 and not crosses:
                # A declaration's signature ending its line with `{` (on its own line, or
                # the last of its parameter lines) opens the body.
                for first, last in bodies:
                    if first <= i + 1 <= last and (
                            line_toks[0][1] == "func" or start_depth > 0) and not any(
                            first <= n < i + 1 for n in opened):
                        opened[i + 1] = end - offsets[i]
    return out, opened


def instrument(files: dict[str, str]) -> tuple[dict[str, str], int]:
    """`files` with a value print after each assignment line, and how many were placed.
    Only files of one package directory are changed: the print is defined once there."""
    out = dict(files)
    placed = 0
    home: str | None = None
    for name in sorted(files):
        if not name.endswith(".go") or name.endswith("_test.go"):
            continue
        folder = name.rpartition("/")[0]
        if home is not None and folder != home:
            continue
        src = files[name]
        found, opened = _layout(src)
        if not found:
            continue
        lines = src.split("\n")
        for n, col in opened.items():  # a call from outside the package starts a segment
            lines[n - 1] = lines[n - 1][:col] + _ENTER + lines[n - 1][col:]
        for n, (names, col) in found.items():
            calls = "".join(f"; guildValue({json.dumps(name)}, {n}, {json.dumps(v)}, {v})"
                            for v in names)
            lines[n - 1] = lines[n - 1][:col] + calls + lines[n - 1][col:]
        if home is None:
            toks = tokenize(src)[:2]
            if len(toks) < 2 or toks[0].text != "package" or toks[1].kind != "ident":
                continue
            at = src.count("\n", 0, toks[1].end)  # the clause's line; our imports follow it
            col = toks[1].end - (src.rfind("\n", 0, toks[1].end) + 1)
            lines[at] = lines[at][:col] + _IMPORTS + lines[at][col:]
            lines.append(_LOGGER.replace("{max_events}", str(MAX_EVENTS))
                         .replace("{chars}", str(VALUE_CHARS)).replace("{mark}", MARK)
                         .replace("{max_call}", str(MAX_CALL_EVENTS)))
            home = folder
        out[name] = "\n".join(lines)
        placed += len(found)
    return (out, placed) if home is not None else (dict(files), 0)


@dataclass(frozen=True)
class Value:
    file: str
    line: int
    name: str
    value: str


_FAILURE = re.compile(r"^\s+[\w.-]+\.go:\d+: ")


def read(log: str, test: str) -> list[Value]:
    """The values printed in `test` (or its subtests) before its first failure message,
    in the last call the test made into the code before it, from `go test -json` output:
    in a table of cases, the case that failed."""
    out: list[Value] = []
    for raw in log.splitlines():
        if not raw.startswith("{"):
            continue
        try:
            ev = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if not isinstance(ev, dict) or ev.get("Action") != "output":
            continue
        name, text = ev.get("Test"), ev.get("Output")
        if not isinstance(name, str) or not isinstance(text, str) or not (
                name == test or name.startswith(test + "/")):
            continue
        if _FAILURE.match(text):
            break
        if text == MARK + "call\n":  # a call from the test: what came before is another's
            out = []
        elif text.startswith(MARK):
            parts = text[len(MARK):].rstrip("\n").split(" ", 3)
            if len(parts) == 4 and parts[1].isdigit():
                out.append(Value(file=parts[0], line=int(parts[1]), name=parts[2],
                                 value=parts[3]))
    return out


def _hits(values: list[Value]) -> list[str]:
    """One line's values, grouped by the runs of it: `a = 1, b = 2` per run."""
    runs: list[list[Value]] = []
    for v in values:
        if not runs or any(w.name == v.name for w in runs[-1]):
            runs.append([v])
        else:
            runs[-1].append(v)
    return [", ".join(f"{v.name} = {v.value}" for v in run) for run in runs]


def describe(files: dict[str, str], values: list[Value]) -> list[str]:
    """`line 12: \\`n := a % 60\\` → n = 15`, one per line that printed, in the order the
    lines first ran; a line that ran many times shows its first values and its last.
    Only lines that are assignments of `files` count: a forged print names no such line."""
    lines = {name: points(src) for name, src in files.items() if name.endswith(".go")}
    by_line: dict[tuple[str, int], list[Value]] = {}
    for v in values:
        if v.line in lines.get(v.file, {}):
            by_line.setdefault((v.file, v.line), []).append(v)
    several = len({f for f, _ in by_line}) > 1
    out = []
    for (name, n), vals in list(by_line.items())[:MAX_LINES]:
        hits = _hits(vals)
        shown = "; then ".join(hits[:MAX_HITS])
        if len(hits) > MAX_HITS:
            shown += f"; … ({len(hits)} times, last: {hits[-1]})"
        where = f"{name} line {n}" if several else f"line {n}"
        out.append(f"{where}: `{files[name].split(chr(10))[n - 1].strip()}` → {shown}")
    return out
