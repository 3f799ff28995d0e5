"""Just enough Go lexing to split a file into top-level declarations, without a Go parser.

Model output is often not valid Go, so this never fails: it tracks strings, runes,
comments and bracket depth, and cuts at top-level keywords.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DECL_START = re.compile(r"^(package|import|func|type|var|const)\b")
_FUNC_NAME = re.compile(r"^func\s*(?:\(\s*(?:\w+\s+)?\*?\s*(\w+)(?:\[[^\]]*\])?\s*\)\s*)?(\w+)")
_SPEC_NAME = re.compile(r"^(?:type|var|const)\s*\(?\s*(\w+)")
_IMPORT_PATH = re.compile(r'(?:(\w+|\.|_)\s+)?"([^"]+)"')


@dataclass
class Decl:
    kind: str  # package, import, func, type, var, const, other
    text: str  # including its leading comments
    name: str = ""  # func name ("T.M" for methods), first declared name, or package name

    @property
    def is_test(self) -> bool:
        return self.kind == "func" and re.match(r"^(Test|Benchmark|Fuzz|Example)[A-Z_0-9]?",
                                                self.name) is not None


def _scan_depth(src: str) -> list[int]:
    """Bracket depth at the start of each line, ignoring strings, runes and comments."""
    depths: list[int] = []
    depth = 0
    i, n = 0, len(src)
    at_line_start = True
    while i < n:
        if at_line_start:
            depths.append(depth)
            at_line_start = False
        c = src[i]
        if c == "\n":
            at_line_start = True
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            end = n if j < 0 else j + 2
            # lines inside a block comment still need a depth entry
            for _ in range(src.count("\n", i, end)):
                depths.append(depth)
            i = end
            if i < n and src[i - 1] == "\n":
                at_line_start = True
        elif c == "`":
            j = src.find("`", i + 1)
            end = n if j < 0 else j + 1
            for _ in range(src.count("\n", i, end)):
                depths.append(depth)
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and src[j] != c and src[j] != "\n":
                j += 2 if src[j] == "\\" else 1
            i = j + 1
        else:
            if c in "({[":
                depth += 1
            elif c in ")}]":
                depth = max(0, depth - 1)
            i += 1
    if at_line_start:
        depths.append(depth)
    return depths


def balanced(src: str) -> bool:
    """Whether every bracket opened in src is closed (a truncated answer is not)."""
    return _scan_depth(src + "\n")[-1] == 0


def split_decls(src: str) -> list[Decl]:
    """Top-level declarations in order; leading comment lines attach to the next decl."""
    lines = src.splitlines(keepends=True)
    depths = _scan_depth(src)
    decls: list[Decl] = []
    pending: list[str] = []  # comments / blank lines waiting for a decl
    current: list[str] | None = None
    kind = "other"
    for idx, line in enumerate(lines):
        depth = depths[idx] if idx < len(depths) else 0
        m = _DECL_START.match(line) if depth == 0 else None
        if m:
            if current is not None:
                decls.append(_make(kind, current))
            kind = m.group(1)
            current = pending + [line]
            pending = []
        elif current is None or (depth == 0 and _is_comment_or_blank(line) and _closed(current)):
            pending.append(line)
        elif depth == 0 and kind != "other" and _complete(current):
            # Text after a finished declaration that starts no new one is not Go (prose,
            # pasted feedback): it becomes its own chunk instead of corrupting the last decl.
            decls.append(_make(kind, current))
            kind = "other"
            current = pending + [line]
            pending = []
        else:
            current.append(line)
    if current is not None:
        decls.append(_make(kind, current))
    if pending and "".join(pending).strip():
        decls.append(Decl(kind="other", text="".join(pending)))
    return decls


def _is_comment_or_blank(line: str) -> bool:
    s = line.strip()
    return not s or s.startswith("//")


def _complete(chunk: list[str]) -> bool:
    text = "".join(chunk).rstrip()
    return text.endswith(("}", ")")) and balanced(text)


def _closed(chunk: list[str]) -> bool:
    """Whether a declaration chunk looks complete (so following comments belong to the next)."""
    last = "".join(chunk).rstrip()
    if _PACKAGE_CLAUSE.match(last.rsplit("\n", 1)[-1]):
        return True  # one line, also under the package's doc comment
    return last.endswith(("}", ")", '"', "`")) or (not last.startswith("func") and "\n" not in last)


_PACKAGE_CLAUSE = re.compile(r"^package\s+\w+\s*(?://.*)?$")


def _make(kind: str, chunk: list[str]) -> Decl:
    text = "".join(chunk)
    body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("//"))
    body = body.lstrip()
    name = ""
    if kind == "func":
        m = _FUNC_NAME.match(body)
        if m:
            name = f"{m.group(1)}.{m.group(2)}" if m.group(1) else m.group(2)
    elif kind == "package":
        m = re.match(r"^package\s+(\w+)", body)
        name = m.group(1) if m else ""
    elif kind in ("type", "var", "const"):
        m = _SPEC_NAME.match(body)
        name = m.group(1) if m else ""
    return Decl(kind=kind, text=text, name=name)


def imports_of(decls: list[Decl]) -> list[tuple[str | None, str]]:
    """(alias, path) for every import spec."""
    out: list[tuple[str | None, str]] = []
    for d in decls:
        if d.kind == "import":
            body = re.sub(r"//[^\n]*", "", d.text)
            body = re.sub(r"^\s*import\b", "", body.lstrip(), count=1)
            out += [(m.group(1), m.group(2)) for m in _IMPORT_PATH.finditer(body)]
    return out


def render_imports(specs: list[tuple[str | None, str]]) -> str:
    if not specs:
        return ""
    if len(specs) == 1:
        alias, path = specs[0]
        return f'import {alias + " " if alias else ""}"{path}"\n'
    body = "".join(f'\t{alias + " " if alias else ""}"{path}"\n' for alias, path in specs)
    return f"import (\n{body})\n"


def assemble(package: str, imports: list[tuple[str | None, str]], decls: list[Decl]) -> str:
    """A file from a package name, import specs and declarations (package/imports skipped)."""
    parts = [f"package {package}\n"]
    seen: set[tuple[str | None, str]] = set()
    uniq = [s for s in imports if not (s in seen or seen.add(s))]
    if uniq:
        parts.append(render_imports(uniq))
    for d in decls:
        if d.kind in ("package", "import", "other"):
            continue
        parts.append(d.text.strip("\n") + "\n")
    return "\n".join(parts)


def decl_starts(src: str) -> list[tuple[int, Decl]]:
    """Each top-level declaration with the 0-based line its text starts on."""
    out = []
    at = 0
    for decl in split_decls(src):
        idx = src.find(decl.text, at)
        if idx < 0:
            continue
        out.append((src.count("\n", 0, idx), decl))
        at = idx + len(decl.text)
    return out


def enclosing_decl(src: str, line: int) -> Decl | None:
    """The top-level declaration that holds 1-based `line`."""
    at = 1
    for d in split_decls(src):
        n = d.text.count("\n")
        if at <= line < at + n or (at <= line and not d.text.endswith("\n")):
            return d
        at += n
    return None


def keep_doc(old: str, new: str) -> str:
    """A replacement declaration's text `new`, given the `//` doc comment of the one it
    replaces (`old`) when it brings none of its own: a rewritten function keeps its
    documentation."""
    body = new.lstrip("\n")
    if body.lstrip().startswith(("//", "/*")):
        return new
    doc = []
    for line in old.strip("\n").split("\n"):
        if not line.startswith("//"):
            break
        doc.append(line)
    if not doc:
        return new
    return new[:len(new) - len(body)] + "\n".join(doc) + "\n" + body


def splice_decls(src: str, answer: str, name: str) -> str | None:
    """`src` with its declaration `name` replaced by the answer's, and declarations the
    answer adds (helpers) appended; the answer's imports joined to the file's. None when
    the answer does not declare `name` or redeclares the rest of the file (a whole file:
    take it as such)."""
    have = split_decls(src)
    got = split_decls(answer)
    new = {d.name: d for d in got if d.kind in ("func", "type", "var", "const") and d.name}
    if name not in new:
        return None
    others = {d.name for d in have if d.kind == "func" and d.name and d.name != name}
    if others and others <= set(new):
        return None
    names = {d.name for d in have}
    out: list[Decl] = []
    for d in have:
        if d.name == name and d.kind == new[name].kind:
            text = keep_doc(d.text, new[name].text)
            out.append(Decl(d.kind, "\n" + text.strip("\n") + "\n", d.name))
        else:
            out.append(d)
    out += [Decl(d.kind, "\n" + d.text.strip("\n") + "\n", d.name) for n, d in new.items()
            if n != name and n not in names and not d.is_test]
    pkg = next((d.name for d in have if d.kind == "package"), "")
    imports = imports_of(have) + imports_of(got)
    if pkg and set(imports) == set(imports_of(have)):
        return "".join(d.text for d in out)  # the file's own header, comments and all
    if pkg:
        return assemble(pkg, imports, out)
    text = "".join(d.text for d in out)
    return (render_imports(imports) + "\n" + text) if imports else text


_PACKAGE_RE = re.compile(r"^\s*package\s+(\w+)", re.M)


def strip_comments(src: str) -> str:
    """Go source without its comments (line numbers kept), for looking at clauses."""
    src = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def package_of(source: str) -> str | None:
    """The name in a Go file's package clause (comments ignored), or None."""
    m = _PACKAGE_RE.search(strip_comments(source))
    return m.group(1) if m else None


def without_body(decl: Decl, note: str) -> str | None:
    """A function declaration's text with its body replaced by the comment `note`: the
    signature and doc comment kept. None when the body cannot be found."""
    if decl.kind != "func":
        return None
    depth = 0
    start = None
    # From the `func` line: a doc comment may say "func" or hold brackets of its own.
    head = re.search(r"^func\b", decl.text, re.M)
    i = head.start() if head else -1
    while 0 <= i < len(decl.text):
        ch = decl.text[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "{" and depth == 0:
            # `interface{}` or `struct{…}` in a result type opens no body.
            if not re.search(r"(?:interface|struct)\s*$", decl.text[:i]):
                start = i
                break
            close = decl.text.find("}", i)
            i = close if close > 0 else len(decl.text)
        i += 1
    end = decl.text.rstrip().rfind("}")
    if start is None or end <= start:
        return None
    return decl.text[:start + 1] + f"\n\t// {note}\n" + decl.text[end:]
