"""Deterministic repairs applied before spending a model call: gofmt, import hygiene, and
the few type errors whose fix the compiler spells out.

Small models lose whole rounds to mistakes a tool can fix in milliseconds: an import they
declared and never used, `strings.Fields` without importing `strings`, bad formatting, a
variable declared and never used, a `rune` returned as `int`.
The compiler-driven pass (`apply_fixes`) acts only on what `go` reported and is the
authority; `fix_imports_source` guesses the same fixes from the source alone, so a round
can skip a toolchain run when the answer is obviously missing an import.

Go sources are handled with a small tokenizer (comments, strings and runes skipped), not
regexes over raw text: `"strings."` inside a string literal must not count as a use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from pydantic import BaseModel

from agent.golang import clashes
from agent.golang.callforms import call_edits
from agent.golang.source import balanced
from agent.golang.tokens import Token, tokenize
from agent.golang.typefixes import (
    EDIT_FIXES,
    apply_checked,
    compiler_edits,
    pointer_needed,
    receiver_edits,
)
from agent.golang.valueforms import form_edits
from tools.diagnostics import Diagnostic
from tools.go import ToolchainError
from tools.gofmt import gofmt_source

FIX_KINDS = ("gofmt", "unused-imports", "missing-imports", *EDIT_FIXES, "spec-declarations")
# Fixes with one reading whatever comes after: an import the compiler calls unused, a
# standard package the code calls without importing, a declaration the task spells out.
# never-worse keeps them even when the error count does not drop: the errors that then
# appear were there all along, hidden (a call into an undefined package is never
# type-checked), and the model is better shown them than the missing import.
CERTAIN_FIXES = frozenset({"unused-imports", "missing-imports", "spec-declarations"})
# The repair loop's levers share the `--no-fix NAME` switch with the fixes proper:
# never-worse keeps a fix only when the check improves, grounding adds facts from `go doc`,
# repeat-lines names the failing lines an answer wrote again, run-trace where a failing
# test went in the code, type-facts the Go idiom a type error calls for, rewrite-body
# asks anew for a given function the model hands back unchanged, one-token tries each
# one-token change to the lines the tests ran (agent/loop/).
LEVERS = ("never-worse", "grounding", "signatures", "repeat-lines", "code-first",
          "hidden-resample", "spread", "switch-on-copy", "explain-panics",
          "probe-edges", "go-pitfalls", "run-trace", "type-facts",
          "rewrite-body", "switch-on-same", "run-values", "one-token")
FIX_NAMES = (*FIX_KINDS, *LEVERS)

# Package name → import path, for names that identify one standard-library package.
# Ambiguous names (`template`: text/ or html/, `scanner`: text/ or go/) are left out:
# guessing wrong turns one compile error into another.
STD_PACKAGES: dict[str, str] = {
    "bufio": "bufio", "bytes": "bytes", "cmp": "cmp", "context": "context",
    "errors": "errors", "fmt": "fmt", "io": "io", "iter": "iter", "log": "log",
    "maps": "maps", "math": "math", "os": "os", "path": "path", "reflect": "reflect",
    "regexp": "regexp", "runtime": "runtime", "slices": "slices", "sort": "sort",
    "strconv": "strconv", "strings": "strings", "sync": "sync", "testing": "testing",
    "time": "time", "unicode": "unicode", "unsafe": "unsafe",
    "bits": "math/bits", "big": "math/big", "cmplx": "math/cmplx", "rand": "math/rand",
    "utf8": "unicode/utf8", "utf16": "unicode/utf16", "atomic": "sync/atomic",
    "heap": "container/heap", "list": "container/list", "ring": "container/ring",
    "json": "encoding/json", "hex": "encoding/hex", "base64": "encoding/base64",
    "binary": "encoding/binary", "csv": "encoding/csv", "md5": "crypto/md5",
    "sha1": "crypto/sha1", "sha256": "crypto/sha256", "filepath": "path/filepath",
    "fs": "io/fs", "tabwriter": "text/tabwriter", "http": "net/http", "url": "net/url",
    "signal": "os/signal", "exec": "os/exec", "debug": "runtime/debug",
    "iotest": "testing/iotest", "fstest": "testing/fstest",
}
STD_PATHS = frozenset(STD_PACKAGES.values()) | {
    "math/rand/v2", "crypto/rand", "crypto/sha512", "encoding/xml", "html", "html/template",
    "text/template", "text/scanner", "go/ast", "go/parser", "go/token", "go/format",
    "net", "os/user", "hash", "hash/crc32", "hash/fnv", "index/suffixarray", "expvar",
    "flag", "embed", "log/slog", "mime", "image", "image/color", "compress/gzip",
    "archive/zip", "archive/tar", "database/sql", "net/mail", "syscall", "unique", "weak",
}

# Third-party packages whose name is certain, so the source pass may drop them when unused
# (HumanEval-X test files import testify's assert whether they use it or not).
KNOWN_PATHS = frozenset({"github.com/stretchr/testify/assert",
                         "github.com/stretchr/testify/require"})

_UNUSED_RE = re.compile(r'^"(?P<path>[^"]+)" imported(?: as (?P<alias>\w+))? and not used')
_UNDEFINED_RE = re.compile(r"^undefined: (?P<name>[A-Za-z_]\w*)$")
class AppliedFix(BaseModel):
    """One deterministic change, recorded in the trajectory."""

    name: str  # one of FIX_NAMES
    file: str
    detail: str


# -- the import section ------------------------------------------------------------------

@dataclass
class ImportSpec:
    name: str | None  # alias, "_" or "."; None when the package's own name is used
    path: str
    start: int  # offsets of the spec in the source (alias included)
    end: int
    decl: ImportDecl


@dataclass
class ImportDecl:
    start: int  # offset of the `import` keyword
    end: int  # offset just past the spec (single) or the closing paren (grouped)
    grouped: bool
    close: int | None = None  # offset of `)` in a grouped declaration
    specs: list[ImportSpec] = field(default_factory=list)


@dataclass
class ImportSection:
    decls: list[ImportDecl]
    package_end: int | None  # offset just past the package clause, if there is one
    body_start: int  # the first token after the imports

    @property
    def specs(self) -> list[ImportSpec]:
        return [s for d in self.decls for s in d.specs]


def _unquote(lit: str) -> str:
    return lit[1:-1] if len(lit) >= 2 else lit


def parse_imports(src: str, tokens: list[Token] | None = None) -> ImportSection:
    """The package clause (optional: task files may omit it) and the import declarations."""
    toks = tokens if tokens is not None else tokenize(src)
    i = 0
    package_end = None
    if len(toks) >= 2 and toks[0].text == "package" and toks[1].kind == "ident":
        package_end, i = toks[1].end, 2
    decls: list[ImportDecl] = []
    while i < len(toks):
        if toks[i].text == ";":
            i += 1
            continue
        if toks[i].text != "import":
            break
        kw = toks[i]
        i += 1
        if i < len(toks) and toks[i].text == "(":
            decl = ImportDecl(start=kw.start, end=toks[i].end, grouped=True)
            i += 1
            while i < len(toks) and toks[i].text != ")":
                spec, i = _parse_spec(toks, i, decl)
                if spec:
                    decl.specs.append(spec)
            if i < len(toks):
                decl.close, decl.end = toks[i].start, toks[i].end
                i += 1
            decls.append(decl)
        else:
            decl = ImportDecl(start=kw.start, end=kw.end, grouped=False)
            spec, i = _parse_spec(toks, i, decl)
            if spec:
                decl.specs.append(spec)
                decl.end = spec.end
            decls.append(decl)
    body_start = toks[i].start if i < len(toks) else len(src)
    return ImportSection(decls=decls, package_end=package_end, body_start=body_start)


def _parse_spec(toks: list[Token], i: int, decl: ImportDecl) -> tuple[ImportSpec | None, int]:
    name = None
    start = toks[i].start
    if toks[i].kind == "ident" or toks[i].text in ("_", "."):
        name = toks[i].text
        i += 1
    if i < len(toks) and toks[i].kind == "string":
        tok = toks[i]
        return ImportSpec(name, _unquote(tok.text), start, tok.end, decl), i + 1
    return None, i + 1  # not an import spec: skip the token so parsing always advances


def package_name(path: str) -> str:
    """The name an import binds by default: the last element, skipping a `/vN` suffix."""
    parts = path.split("/")
    last = parts[-1]
    if re.fullmatch(r"v\d+", last) and len(parts) > 1:
        last = parts[-2]
    # gopkg.in/yaml.v3 → yaml
    return re.sub(r"\.v\d+$", "", last).replace("-", "_")


def _bound_name(spec: ImportSpec) -> str:
    return spec.name if spec.name else package_name(spec.path)


# -- identifier uses ---------------------------------------------------------------------

@dataclass
class _Uses:
    selector_bases: set[str]  # `x` in `x.Y`, where `x` is not itself after a dot
    bare: set[str]  # identifiers used any other way (declared, called, assigned …)


def _uses(toks: list[Token], from_offset: int) -> _Uses:
    sel: set[str] = set()
    bare: set[str] = set()
    for k, t in enumerate(toks):
        if t.start < from_offset or t.kind != "ident":
            continue
        after_dot = k > 0 and toks[k - 1].text == "."
        if after_dot:
            continue  # a field or method name, never a package
        if k + 1 < len(toks) and toks[k + 1].text == "." and (
                k + 2 < len(toks) and toks[k + 2].kind == "ident"):
            sel.add(t.text)
        else:
            bare.add(t.text)
    return _Uses(sel, bare)


# -- edits -------------------------------------------------------------------------------

def _line_bounds(src: str, start: int, end: int) -> tuple[int, int]:
    """Widen [start, end) to whole lines when nothing but blanks or a comment shares them."""
    ls = src.rfind("\n", 0, start) + 1
    le = src.find("\n", end)
    le = len(src) if le == -1 else le + 1
    before = src[ls:start]
    after = src[end:le].strip()
    if before.strip() == "" and (after == "" or after.startswith("//") or after == ";"):
        return ls, le
    return start, end


def _apply_edits(src: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, text in sorted(edits, key=lambda e: (e[0], e[1]), reverse=True):
        src = src[:start] + text + src[end:]
    return src


def remove_imports(src: str, doomed: Iterable[tuple[str, str | None]]) -> tuple[str, list[str]]:
    """Remove import specs matching (path, alias); alias None matches an unaliased spec.

    Blank (`_`) and dot imports are never removed: they are there for side effects or
    on purpose. A declaration left empty is removed whole. Returns the new source and
    the removed paths, as written (`mr "math/rand"`).
    """
    wanted = set(doomed)
    section = parse_imports(src)
    edits: list[tuple[int, int, str]] = []
    removed: list[str] = []
    for decl in section.decls:
        gone = [s for s in decl.specs if s.name not in ("_", ".") and (s.path, s.name) in wanted]
        if not gone:
            continue
        removed += [f'{s.name} "{s.path}"' if s.name else f'"{s.path}"' for s in gone]
        if len(gone) == len(decl.specs):
            edits.append((*_line_bounds(src, decl.start, decl.end), ""))
        else:
            edits += [(*_line_bounds(src, s.start, s.end), "") for s in gone]
    return _apply_edits(src, edits), removed


def add_imports(src: str, paths: Iterable[str]) -> str:
    """Add standard-library imports (already-imported paths are skipped)."""
    section = parse_imports(src)
    have = {s.path for s in section.specs}
    new = sorted(p for p in dict.fromkeys(paths) if p not in have)
    if not new:
        return src
    group = next((d for d in section.decls if d.grouped and d.close is not None), None)
    if group is not None:
        return _add_to_group(src, group, new)
    if section.decls:
        # Only single-line declarations: add ours as more of the same after the last one.
        last = section.decls[-1]
        le = src.find("\n", last.end)
        at = len(src) if le == -1 else le + 1
        text = "".join(f'import "{p}"\n' for p in new)
        if le == -1:
            text = "\n" + text
        return src[:at] + text + src[at:]
    block = (f'import "{new[0]}"\n' if len(new) == 1 else
             "import (\n" + "".join(f'\t"{p}"\n' for p in new) + ")\n")
    if section.package_end is not None:
        le = src.find("\n", section.package_end)
        at = len(src) if le == -1 else le + 1
        prefix = "" if le != -1 else "\n"
        return src[:at] + prefix + "\n" + block + src[at:]
    return block + "\n" + src


def _add_to_group(src: str, group: ImportDecl, new: list[str]) -> str:
    own_line = [s for s in group.specs if _line_bounds(src, s.start, s.end)[0] != s.start]
    indent = "\t"
    if own_line:
        first = own_line[0]
        indent = src[src.rfind("\n", 0, first.start) + 1:first.start] or "\t"
    close_ls = src.rfind("\n", 0, group.close) + 1
    closing_alone = src[close_ls:group.close].strip() == ""
    inserts: dict[int, list[str]] = {}  # offset → texts, kept in sorted order
    for path in new:
        # Before the first std spec that sorts after it, so gofmt's order mostly holds.
        after = next((s for s in own_line if s.path in STD_PATHS and s.path > path), None)
        if after is not None:
            at = src.rfind("\n", 0, after.start) + 1
            inserts.setdefault(at, []).append(f'{indent}"{path}"\n')
        elif closing_alone:
            inserts.setdefault(close_ls, []).append(f'{indent}"{path}"\n')
        else:
            assert group.close is not None
            inserts.setdefault(group.close, []).append(f'; "{path}"')
    edits = [(at, at, "".join(texts)) for at, texts in inserts.items()]
    return _apply_edits(src, edits)


# -- the passes --------------------------------------------------------------------------

def _declares(uses: _Uses, name: str) -> bool:
    """True when the file uses `name` other than as `name.X`: it is a local of some kind."""
    return name in uses.bare


def fix_imports_source(src: str, file: str = "") -> tuple[str, list[AppliedFix]]:
    """Guess import fixes from the source alone (no toolchain): cheap, and conservative.

    Adds the standard-library import for a selector base like `strings.Fields` when no
    import binds `strings` and the file never uses `strings` any other way (a local
    variable or parameter named `strings` shadows the package). Removes standard-library
    and explicitly aliased imports whose name is never used; other third-party imports
    are kept, since their package name cannot be known from the path.
    """
    toks = tokenize(src)
    section = parse_imports(src, toks)
    uses = _uses(toks, section.body_start)
    fixes: list[AppliedFix] = []
    bound = {_bound_name(s) for s in section.specs if s.name not in ("_", ".")}
    unused: list[tuple[str, str | None]] = []
    for spec in section.specs:
        if spec.name in ("_", ".") or spec.path == "C":
            continue
        if spec.path not in STD_PATHS and spec.path not in KNOWN_PATHS and not spec.name:
            continue
        name = _bound_name(spec)
        if name not in uses.selector_bases and name not in uses.bare:
            unused.append((spec.path, spec.name))
    if unused:
        src, removed = remove_imports(src, unused)
        fixes += [AppliedFix(name="unused-imports", file=file, detail=f"removed import {r}")
                  for r in removed]
    missing = sorted(
        STD_PACKAGES[n] for n in uses.selector_bases
        if n in STD_PACKAGES and n not in bound and not _declares(uses, n))
    if missing:
        src = add_imports(src, missing)
        fixes += [AppliedFix(name="missing-imports", file=file, detail=f'added import "{p}"')
                  for p in missing]
    return src, fixes


def _settle_rewritten_imports(src: str) -> str:
    """`fmt` or `slices` imported where a rewrite brought it in, `errors` dropped where it
    took the last use away: in the same pass, so never-worse judges the rewrite, not the
    import."""
    toks = tokenize(src)
    section = parse_imports(src, toks)
    uses = _uses(toks, section.body_start)
    bound = {_bound_name(s): s for s in section.specs if s.name not in ("_", ".")}
    brought = [p for p in ("fmt", "slices")
               if p in uses.selector_bases and p not in bound and not _declares(uses, p)]
    if brought:
        src = add_imports(src, brought)
    spec = bound.get("errors")
    if (spec is not None and spec.path == "errors" and "errors" not in uses.selector_bases
            and "errors" not in uses.bare):
        src, _ = remove_imports(src, [("errors", spec.name)])
    return src


def _match_file(diag_file: str | None, files: dict[str, str]) -> str | None:
    """The key of `files` a diagnostic's path names (exact, else by unique base name)."""
    if not diag_file:
        return None
    if diag_file in files:
        return diag_file
    norm = PurePosixPath(diag_file.replace("\\", "/"))
    for name in files:
        if PurePosixPath(name) == norm or str(norm).endswith("/" + name):
            return name
    by_base = [n for n in files if PurePosixPath(n).name == norm.name]
    return by_base[0] if len(by_base) == 1 else None


_SPEC_VALUE_RE = re.compile(
    r"^[ \t]*(?P<kw>var|const)[ \t]+(?P<name>[A-Za-z_]\w*)(?:[ \t]+[\w.*\[\]]+)?[ \t]*=[ \t]*\S.*$",
    re.M)
_SPEC_TYPE_RE = re.compile(r"^[ \t]*type[ \t]+(?P<name>[A-Za-z_]\w*)[ \t]+(?P<rest>.+)$", re.M)


def spec_declarations(spec: str) -> dict[str, str]:
    """Complete var/const/type declarations a task's prompt spells out, by name.

    Prompts often pin names (`var ErrNotFound = errors.New("not found")`, `type Celsius
    float64`) that small models then leave out. Only declarations written out in full
    count: a struct with a placeholder body (`/* your fields */`, `...`) is the model's job.
    """
    out: dict[str, str] = {}
    for m in _SPEC_VALUE_RE.finditer(spec):
        line = m.group(0).strip()
        if balanced(line) and "..." not in line:
            out.setdefault(m["name"], line)
    lines = spec.splitlines()
    for m in _SPEC_TYPE_RE.finditer(spec):
        rest = m["rest"].strip()
        text = m.group(0).strip()
        if rest.endswith("{"):
            start = spec.count("\n", 0, m.start())
            indent = len(lines[start]) - len(lines[start].lstrip())
            body = [text]
            for ln in lines[start + 1:]:
                body.append(ln[indent:] if ln[:indent].strip() == "" else ln.strip())
                if balanced("\n".join(body)):
                    break
            text = "\n".join(body)
        if not balanced(text) or "/*" in text or "..." in text:
            continue
        out.setdefault(m["name"], text)
    return out


def apply_fixes(
    files: dict[str, str],
    diagnostics: list[Diagnostic],
    enabled: Iterable[str] = FIX_NAMES,
    *,
    spec: str = "",
) -> tuple[dict[str, str], list[AppliedFix]]:
    """Apply the enabled deterministic fixes the compiler's diagnostics call for.

    `files` maps file name → Go source. Returns the new mapping (unchanged files are the
    same strings) and what was done, in order. Import fixes act only on files the
    diagnostics name; gofmt formats every file it can parse. `spec` is the task's prompt:
    a name the compiler calls undefined that the prompt declares in full is declared.
    """
    on = set(enabled) - set(LEVERS)
    unknown = on - set(FIX_NAMES)
    if unknown:
        raise ValueError(f"unknown fix {sorted(unknown)[0]!r}; known: {', '.join(FIX_NAMES)}")
    out = dict(files)
    diagnostics = list(diagnostics)
    fixes: list[AppliedFix] = []
    unused: dict[str, list[tuple[str, str | None]]] = {}
    undefined: dict[str, list[str]] = {}
    located: dict[str, list[Diagnostic]] = {}
    for d in diagnostics:
        name = _match_file(d.file, out)
        if name is None:
            continue
        first_line = d.message.splitlines()[0].strip() if d.message else ""
        if m := _UNUSED_RE.match(first_line):
            unused.setdefault(name, []).append((m["path"], m["alias"]))
        elif m := _UNDEFINED_RE.match(first_line):
            undefined.setdefault(name, []).append(m["name"])
        else:
            located.setdefault(name, []).append(d)

    # A method that needs no pointer receiver is declared on the value: that fixes every
    # use at once, in files no fix may touch (the tests) too; `&` at each use is not needed.
    found = {name: edits for name in out
             if "conversions" in on and not name.endswith("_test.go")
             and (edits := receiver_edits(out[name], diagnostics))}
    on_value = {e.receiver for edits in found.values() for e in edits}
    located = {name: [d for d in diags if pointer_needed(d.message) not in on_value]
               for name, diags in located.items()}
    # Position-based edits first, together, while the positions are still the compiler's.
    for name, diags in located.items():
        edits = compiler_edits(out[name], diags, on)
        if "value-forms" in on:
            edits += form_edits(out[name], diags)
        if "call-forms" in on:
            edits += call_edits(out[name], diags)
        if "name-clash" in on and (renames := clashes.clash_edits(out[name], diags)):
            # The renamed uses are the field's: an edit another fix reads into them (the
            # method value `o.State` called) reads the clash, not the code.
            edits = [e for e in edits
                     if not any(e.start <= r.end and e.end >= r.start for r in renames)]
            edits += renames
        src, done = apply_checked(out[name], edits)
        if any(e.fix in ("call-forms", "value-forms") for e in done):
            src = _settle_rewritten_imports(src)
        if done:
            out[name] = src
            # One rename is many edits with one detail: the model is told it once.
            fixes += [AppliedFix(name=e.fix, file=name, detail=e.detail)
                      for e in done if e.fix != clashes.FIX] + [
                AppliedFix(name=clashes.FIX, file=name, detail=d)
                for d in dict.fromkeys(e.detail for e in done if e.fix == clashes.FIX)]
    for name in found:
        # Found again: the position edits above may have moved the method.
        src, done = apply_checked(out[name], receiver_edits(out[name], diagnostics))
        if done:
            out[name] = src
            fixes += [AppliedFix(name=e.fix, file=name, detail=e.detail) for e in done]
    if "unused-imports" in on:
        for name, doomed in unused.items():
            src, removed = remove_imports(out[name], doomed)
            if removed:
                out[name] = src
                fixes += [AppliedFix(name="unused-imports", file=name,
                                     detail=f"removed import {r}") for r in removed]
    if "missing-imports" in on:
        for name, idents in undefined.items():
            src = out[name]
            toks = tokenize(src)
            section = parse_imports(src, toks)
            uses = _uses(toks, section.body_start)
            # Only names used as `pkg.X` and never as anything else: `undefined: sort` for
            # a call `sort(xs)` means a missing function, which no import fixes.
            paths = [STD_PACKAGES[n] for n in dict.fromkeys(idents)
                     if n in STD_PACKAGES and n in uses.selector_bases
                     and not _declares(uses, n)]
            new = add_imports(src, paths)
            if new != src:
                have = {s.path for s in section.specs}
                out[name] = new
                fixes += [AppliedFix(name="missing-imports", file=name,
                                     detail=f'added import "{p}"')
                          for p in sorted(set(paths)) if p not in have]
    if "spec-declarations" in on and spec and undefined:
        wanted = spec_declarations(spec)
        for name, idents in undefined.items():
            # The compiler has the last word: `undefined` means no file declares it.
            src = out[name]
            add = [n for n in dict.fromkeys(idents) if n in wanted]
            if add:
                out[name] = src.rstrip("\n") + "\n\n" + "\n\n".join(
                    wanted[n] for n in add) + "\n"
                fixes += [AppliedFix(name="spec-declarations", file=name,
                                     detail=f"declared {n} as the task states") for n in add]
    if "gofmt" in on:
        for name, src in out.items():
            try:
                formatted = gofmt_source(src)
            except ToolchainError:
                break  # no gofmt: formatting is a nicety, never a reason to fail a round
            if formatted is not None and formatted != src:
                out[name] = formatted
                fixes.append(AppliedFix(name="gofmt", file=name, detail="formatted with gofmt"))
    # Unchanged files keep their identity, as promised.
    return {k: (files[k] if k in files and files[k] == v else v) for k, v in out.items()}, fixes
