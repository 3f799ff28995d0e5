"""Facts from the real Go documentation for the errors small models repeat: an API that
does not exist (`strings.Reverse`, a `Keys` method on a map), a known function called with
the wrong arguments. The compiler says *that* a name is wrong; a small model needs to be
told plainly *what is there instead*, with signatures, or it writes the same call again.

`go doc` from the project's own toolchain answers, offline. Its argument is never taken
from model output unchecked: only standard-library package paths (checked against
GOROOT/src) and exported identifiers pass, as separate argv entries without a shell.
Answers are cached on disk per Go version, since the standard library of one version
never changes.
"""

from __future__ import annotations

import difflib
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from agent.atomic import write_text_atomic
from agent.golang.fixes import STD_PACKAGES, package_name, parse_imports
from tools.diagnostics import Diagnostic, Kind
from tools.go import ToolchainError, find_toolchain, go_env
from tools.paths import cache_dir

MAX_FACTS = 4
MAX_NAMES = 4
_MAX_LISTED = 10
# Packages whose names small models mix up: a function missing from one is often in another.
_NEIGHBOURS = ("strings", "bytes", "slices", "maps", "sort", "strconv", "unicode",
               "unicode/utf8", "math", "fmt", "errors")
DOC_TIMEOUT = 20.0

# A standard-library import path: lower-case elements, no dots (so no module hosts), no
# leading dash (so never a flag); `internal` and `vendor` trees are not public API.
_STD_PATH_RE = re.compile(r"^[a-z][a-z0-9]*(?:/[a-z][a-z0-9]*){0,3}$")
_EXPORTED_RE = re.compile(r"^[A-Z][A-Za-z0-9_]{0,63}$")

_UNDEFINED_SEL_RE = re.compile(r"^undefined: (?P<pkg>[A-Za-z_]\w*)\.(?P<name>\w+)$")
_NO_MEMBER_RE = re.compile(r"^(?P<expr>[\w.\[\]()]+)\.(?P<name>\w+) undefined \(type "
                           r"(?P<type>.+?) has no field or method \w+")
_CALL_RE = re.compile(r"(?:in call to|in argument to) (?P<pkg>[a-z]\w*)\.(?P<name>[A-Z]\w*)\b")
_FIELD_AND_METHOD_RE = re.compile(r"^field and method with the same name (?P<name>\w+)$")
_DOC_FUNC_RE = re.compile(r"^func (?P<name>[A-Z]\w*)\b")
_DOC_METHOD_RE = re.compile(r"^func \([^)]*\) (?P<name>[A-Z]\w*)\b")
_DOC_FIELD_RE = re.compile(r"^\t(?P<name>[A-Z]\w*)\s+\S")
_BASIC = frozenset({"string", "int", "int8", "int16", "int32", "int64", "uint", "uint8",
                    "uint16", "uint32", "uint64", "uintptr", "byte", "rune", "float32",
                    "float64", "bool", "complex64", "complex128", "untyped int",
                    "untyped string", "untyped float", "untyped rune"})


def std_path_ok(path: str) -> bool:
    """True for a public standard-library package path of the toolchain in use."""
    if not _STD_PATH_RE.match(path) or any(p in ("internal", "vendor", "cmd", "testdata")
                                           for p in path.split("/")):
        return False
    try:
        return (find_toolchain().goroot / "src" / path).is_dir()
    except ToolchainError:
        return False


_NOTHING = "\0"  # cached answer: go doc knows no such symbol


@dataclass(frozen=True)
class _Doc:
    text: str | None  # go doc's output; None when it has nothing (no such symbol)


class GoDoc:
    """`go doc` answers, validated, cached on disk per Go version and in memory."""

    def __init__(self, root: Path | None = None) -> None:
        self._root = root
        self._mem: dict[tuple[str, ...], _Doc] = {}

    def _dir(self) -> Path:
        version = re.sub(r"[^\w.+-]", "_", find_toolchain().version)
        return (self._root or cache_dir() / "godoc") / version

    def query(self, path: str, symbol: str | None = None, *, short: bool = False) -> str | None:
        """go doc [-short] path[.symbol]; None for anything not a std package or symbol."""
        if not std_path_ok(path) or (symbol is not None and not _EXPORTED_RE.match(symbol)):
            return None
        key = (path, symbol or "", "short" if short else "full")
        if key in self._mem:
            return self._mem[key].text
        file = self._dir() / ("%".join(p for p in (path.replace("/", "+"), *key[1:]) if p)
                              + ".txt")
        try:
            cached = file.read_text(encoding="utf-8")
            text = None if cached == _NOTHING else cached
        except OSError:
            ok, text = self._run(path, symbol, short)
            if not ok:
                return None  # not cached: the toolchain may answer next time
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
                write_text_atomic(file, text if text is not None else _NOTHING)
            except OSError:
                pass  # a read-only cache only costs speed
        self._mem[key] = _Doc(text)
        return text

    @staticmethod
    def _run(path: str, symbol: str | None, short: bool) -> tuple[bool, str | None]:
        """(the toolchain answered, its documentation or None for no such symbol)."""
        try:
            tc = find_toolchain()
        except ToolchainError:
            return False, None
        target = f"{path}.{symbol}" if symbol else path
        argv = [str(tc.go), "doc", *(["-short"] if short else []), target]
        # Not a temporary folder: the go command may leave a helper process writing its
        # telemetry state under HOME after it exits, which races a folder's removal.
        home = cache_dir() / "godoc-home"
        try:
            home.mkdir(parents=True, exist_ok=True)
            proc = subprocess.run(argv, capture_output=True, text=True, cwd=home,
                                  env=go_env(home, home), timeout=DOC_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired):
            return False, None
        return True, (proc.stdout if proc.returncode == 0 and proc.stdout.strip() else None)

    # -- what a package or type offers ----------------------------------------------------
    def members(self, path: str) -> dict[str, str]:
        """Exported functions of a package, name → signature line."""
        out: dict[str, str] = {}
        for ln in (self.query(path, short=True) or "").splitlines():
            s = ln.strip()
            if m := _DOC_FUNC_RE.match(s):
                out.setdefault(m["name"], s)
            elif s.startswith(("type ", "var ", "const ")):
                name = s.split()[1].rstrip("(")
                if _EXPORTED_RE.match(name):
                    out.setdefault(name, s)
        return out

    def type_members(self, path: str, typ: str) -> dict[str, str]:
        """Exported methods and fields of a package's type, name → line."""
        out: dict[str, str] = {}
        for ln in (self.query(path, typ) or "").splitlines():
            if m := _DOC_METHOD_RE.match(ln):
                out.setdefault(m["name"], ln.strip())
            elif m := _DOC_FIELD_RE.match(ln):
                out.setdefault(m["name"], f"field {ln.strip()}")
        return out

    def signature(self, path: str, name: str) -> str | None:
        for ln in (self.query(path, name) or "").splitlines():
            if ln.startswith(("func ", "type ", "var ", "const ")):
                return ln.strip()
        return None


@lru_cache(maxsize=1)
def default_godoc() -> GoDoc:
    return GoDoc()


def _words(name: str) -> set[str]:
    return {w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name)}


def closest(want: str, names: Iterable[str], n: int = MAX_NAMES) -> list[str]:
    """The names most like `want`: spelling and shared camel-case words both count
    (`IsLetterOrDigit` → `IsLetter`, `IsDigit`; `Reverse` → `Replace`, …)."""
    ww = _words(want)
    scored = []
    for name in names:
        ratio = difflib.SequenceMatcher(None, want.lower(), name.lower()).ratio()
        shared = len(ww & _words(name)) / max(1, len(ww))
        score = ratio + shared
        if score >= 0.55:
            scored.append((-score, name))
    return [name for _, name in sorted(scored)[:n]]


def _imports(src: str) -> dict[str, str]:
    """Name → import path the file binds."""
    out = {}
    for spec in parse_imports(src).specs:
        if spec.name in ("_", "."):
            continue
        out[spec.name or package_name(spec.path)] = spec.path
    return out


def _resolve(pkg: str, src: str) -> str | None:
    path = _imports(src).get(pkg) or STD_PACKAGES.get(pkg)
    return path if path and std_path_ok(path) else None


def _listing(lines: list[str]) -> str:
    return "\n".join(f"    {ln}" for ln in lines)


def _builtin_kind(typ: str) -> tuple[str, str | None] | None:
    """(what the type is, the package with functions for it) for a built-in type."""
    t = typ.lstrip("*")
    if t.startswith("map["):
        return "a map", "maps"
    if t.startswith("[]byte"):
        return "a byte slice", "bytes"
    if t.startswith("[]"):
        return "a slice", "slices"
    if re.match(r"^\[\d+\]", t):
        return "an array", "slices"
    if t in ("string", "untyped string"):
        return "a string", "strings"
    if t in _BASIC:
        return f"the basic type {t}", None
    if t.startswith(("func(", "chan ")):
        return "a " + t.split("(")[0].split()[0], None
    return None


class Grounder:
    """Turns diagnostics into plain facts with the real names nearby."""

    def __init__(self, doc: GoDoc | None = None) -> None:
        self.doc = doc or default_godoc()

    def facts(self, diagnostics: Iterable[Diagnostic], files: dict[str, str]) -> list[str]:
        out: list[str] = []
        seen: set[str] = set()
        for d in diagnostics:
            if d.kind is not Kind.compile or not d.message:
                continue
            src = files.get(d.file or "", "")
            first = d.message.splitlines()[0].strip()
            fact = self._fact(first, src)
            if fact and fact not in seen:
                seen.add(fact)
                out.append(fact)
            if len(out) >= MAX_FACTS:
                break
        return out

    def _fact(self, first: str, src: str) -> str | None:
        if m := _UNDEFINED_SEL_RE.match(first):
            return self._missing_name(m["pkg"], m["name"], src)
        if m := _NO_MEMBER_RE.match(first):
            return self._missing_member(m["expr"], m["name"], m["type"], src)
        if m := _FIELD_AND_METHOD_RE.match(first):
            n = m["name"]
            low = n[0].lower() + n[1:]
            return (f"a type cannot have a field and a method both named {n}: rename the "
                    f"field (for example `{low}`), use `x.{low}` for the stored value inside "
                    f"the methods and keep `{n}()` for the method.")
        if m := _CALL_RE.search(first):
            path = _resolve(m["pkg"], src)
            sig = self.doc.signature(path, m["name"]) if path else None
            if sig:
                return f"{m['pkg']}.{m['name']} is declared as:\n    {sig}"
        return None

    def _missing_name(self, pkg: str, name: str, src: str) -> str | None:
        path = _resolve(pkg, src)
        if path is None:
            return None
        members = self.doc.members(path)
        if not members or name in members:
            return None
        funcs = [n for n, line in members.items() if line.startswith("func")]
        near = closest(name, funcs) or closest(
            name, [n for n, line in members.items() if not line.startswith("type")])
        text = f"package {path} has no function or name {name}."
        if near:
            text += f" The closest names in {path}:\n" + _listing([members[n] for n in near])
        # The same name in a sibling package (`strings.Reverse` → `slices.Reverse`).
        other = [(p, sig) for p in _NEIGHBOURS if p != path
                 and (sig := self.doc.members(p).get(name))]
        if other:
            text += "\nIt does exist elsewhere:\n" + _listing(
                [f"{package_name(p)}.{name}: {sig}" for p, sig in other[:2]])
        if not near and not other:
            text += " Write that code yourself instead of calling it."
        return text

    def _missing_member(self, expr: str, name: str, typ: str, src: str) -> str | None:
        if (kind := _builtin_kind(typ)) is not None:
            what, helper = kind
            text = (f"{expr} is {what} ({typ}), a built-in type: it has no methods or "
                    f"fields at all, so {expr}.{name} cannot work.")
            if helper and (members := self.doc.members(helper)):
                near = [n for n in closest(name, members) if members[n].startswith("func")]
                if near:
                    text += (f" Use a for-range loop, or a function of package {helper}:\n"
                             + _listing([members[n] for n in near]))
                else:
                    text += " Use a for-range loop or an index expression instead."
            return text
        m = re.match(r"^\*?(?P<pkg>[a-z]\w*)\.(?P<type>[A-Z]\w*)$", typ)
        path = _resolve(m["pkg"], src) if m else None
        if m is None or path is None:
            return None
        members = self.doc.type_members(path, m["type"])
        if not members:
            return None
        near = closest(name, members)
        text = f"{typ} has no method or field {name}."
        if near:
            text += " The closest of its methods and fields:\n" + _listing(
                [members[n] for n in near])
        else:
            text += " What it has:\n" + _listing(list(members.values())[:_MAX_LISTED])
        return text
