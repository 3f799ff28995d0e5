"""Go code out of model text: fences with or without tags, several files, junk around it."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from agent.gosrc import Decl, assemble, balanced, imports_of, split_decls

DEFAULT_FILE = "solution.go"
_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*$", re.M)
_NAME_RE = re.compile(r"([\w./-]+\.go)\b")
_GO_HINT = re.compile(r"^\s*(package\s+\w+|func\s|import\s|type\s+\w+)", re.M)
_NON_GO_LANGS = {"bash", "sh", "shell", "console", "text", "txt", "json", "yaml", "yml",
                 "python", "py", "diff", "output", "plaintext", "makefile", "toml", "c", "cpp"}


class FormatError(ValueError):
    """The answer holds no usable Go code; the message is told to the model."""


class Block(BaseModel):
    code: str
    lang: str = ""
    name: str | None = None
    closed: bool = True


class Extraction(BaseModel):
    files: dict[str, str]
    dropped: list[str] = Field(default_factory=list)  # model-written tests / main moved aside
    notes: list[str] = Field(default_factory=list)  # normalisations applied


def find_blocks(text: str) -> list[Block]:
    """Fenced blocks in order; an unclosed final fence runs to the end of the text."""
    blocks: list[Block] = []
    pos = 0
    while True:
        m = _FENCE_OPEN.search(text, pos)
        if not m:
            break
        fence, lang = m.group(1), m.group(2).lower()
        start = m.end() + 1
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", re.M)
        c = close.search(text, start)
        code = text[start:c.start()] if c else text[start:]
        indent = m.group(0)[:len(m.group(0)) - len(m.group(0).lstrip(" \t"))]
        if indent:
            # A fence inside a list item: its code carries the item's indentation too.
            code = "".join(ln[len(indent):] if ln.startswith(indent) else ln.lstrip(" \t")
                           for ln in code.splitlines(keepends=True))
        before = text[max(0, m.start() - 200):m.start()]
        blocks.append(Block(code=code, lang=lang, name=_name_hint(before, code),
                            closed=c is not None))
        if not c:
            break
        pos = c.end()
    return blocks


def _name_hint(before: str, code: str) -> str | None:
    """A file name announced on the line before a block or in its first comment line."""
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    if first.startswith("//"):
        m = _NAME_RE.search(first)
        if m:
            return m.group(1).split("/")[-1] if "/" not in m.group(1) else m.group(1)
    tail = [ln for ln in before.splitlines() if ln.strip()][-1:]
    if tail:
        m = _NAME_RE.search(tail[0])
        if m and len(tail[0]) < 120:
            return m.group(1)
    return None


def _looks_like_go(code: str) -> bool:
    return bool(_GO_HINT.search(code))


def unfenced_code(text: str) -> str | None:
    """Code written without fences: from the first Go-looking line to the last brace."""
    m = _GO_HINT.search(text)
    if not m:
        return None
    body = text[m.start():]
    last = body.rfind("}")
    if last < 0:
        return None
    return body[: last + 1] + "\n"


_NUMBERED = re.compile(r"^[ \t]*>?[ \t]*\d+[ \t]*\| ?")


def _strip_line_numbers(code: str, notes: list[str]) -> str:
    """Undo `  12 | code` prefixes: small models copy the numbered context they are shown."""
    lines = [ln for ln in code.splitlines() if ln.strip()]
    if len(lines) < 3 or sum(bool(_NUMBERED.match(ln)) for ln in lines) * 2 < len(lines):
        return code
    notes.append("removed line-number prefixes copied from the feedback")
    return "\n".join(_NUMBERED.sub("", ln, count=1) for ln in code.splitlines()
                     if not re.match(r"^[ \t]*\|[ \t]*\^?[ \t]*$", ln)) + "\n"


def _cut_repetition(code: str, notes: list[str]) -> str:
    """Drop a degenerate tail where the model repeated the same line until max_tokens."""
    lines = code.splitlines()
    if len(lines) < 8:
        return code
    run = 1
    for i in range(len(lines) - 1, 0, -1):
        if lines[i].strip() and lines[i].strip() == lines[i - 1].strip():
            run += 1
        else:
            break
    if run >= 6:
        notes.append(f"cut {run} repeated lines at the end")
        return "\n".join(lines[: len(lines) - run + 1]) + "\n"
    return code


def extract_code(
    text: str,
    *,
    package: str,
    default_name: str = DEFAULT_FILE,
    protected: frozenset[str] = frozenset(),
    taken: frozenset[str] = frozenset(),
) -> Extraction:
    """The Go files in a model answer, normalised to `package`.

    Model-written test functions and a stray `func main` (when a library package is
    asked for) are moved aside and reported in `dropped`; `*_test.go` files and files
    named in `protected` are refused. `taken` are the top-level names the fixed files
    (the tests shown, support files) declare: a model that copies a test's helper type
    into its answer would redeclare it, so such copies are moved aside too. Raises
    FormatError when nothing usable remains.
    """
    notes: list[str] = []
    blocks = [b for b in find_blocks(text)
              if b.lang in ("go", "golang") or (b.lang not in _NON_GO_LANGS
                                                 and _looks_like_go(b.code))]
    if not blocks:
        raw = unfenced_code(text)
        if raw:
            notes.append("code was not fenced")
            blocks = [Block(code=raw)]
    if not blocks:
        raise FormatError("no Go code block found in the answer")
    if any(not b.closed for b in blocks):
        notes.append("closed an unterminated code fence")

    dropped: list[str] = []
    named: dict[str, list[Decl]] = {}
    imports: dict[str, list[tuple[str | None, str]]] = {}
    for b in blocks:
        code = _cut_repetition(_strip_line_numbers(b.code, notes), notes)
        name = b.name or default_name
        if "/" in name:
            name = name.rsplit("/", 1)[-1]
        if name.endswith("_test.go"):
            dropped.append(f"file {name} (tests are provided; yours are not used)")
            continue
        if name in protected:
            dropped.append(f"file {name} (it may not be changed)")
            continue
        decls = split_decls(code)
        keep: list[Decl] = []
        seen_names: set[str] = set()
        for d in decls:
            if d.kind in ("func", "type") and d.name in seen_names:
                notes.append(f"dropped a repeated definition of {d.name}")
            elif d.kind == "func" and not balanced(d.text):
                notes.append(f"dropped the unfinished func {d.name or '(unnamed)'}")
            elif d.kind == "other":
                if any(ln.strip() and not ln.strip().startswith("//")
                       for ln in d.text.splitlines()):
                    notes.append("dropped text between declarations that is not Go")
            elif d.is_test:
                dropped.append(f"func {d.name}")
            elif d.kind in ("func", "type", "var", "const") and d.name and (
                    d.name in taken or ("." in d.name and d.name.split(".")[0] in taken)):
                dropped.append(f"{d.kind} {d.name} (declared by the provided files)")
            elif d.kind == "func" and d.name == "main" and package != "main":
                dropped.append("func main")
            elif d.kind == "package" and d.name and d.name != package:
                notes.append(f"package {d.name} changed to package {package}")
            else:
                keep.append(d)
                if d.kind in ("func", "type"):
                    seen_names.add(d.name)
        if not any(d.kind in ("func", "type", "var", "const") for d in keep):
            continue
        prev = named.setdefault(name, [])
        # A later block redefining a name replaces the earlier definition (a corrected copy).
        new_names = {d.name for d in keep if d.name and d.kind not in ("package", "import")}
        named[name] = [d for d in prev if d.name not in new_names] + keep
        imports.setdefault(name, []).extend(imports_of(keep))
    if not named:
        if dropped:
            raise FormatError("the answer only contained tests or a main function, not the "
                              "requested code")
        raise FormatError("no Go declarations found in the code block")
    files: dict[str, str] = {}
    for name, decls in named.items():
        specs = imports[name]
        if any(d.startswith("func Test") for d in dropped) and not _uses(decls, "testing"):
            specs = [s for s in specs if s[1] != "testing"]
        files[name] = assemble(package, specs, decls)
    return Extraction(files=files, dropped=dropped, notes=notes)


def _uses(decls: list[Decl], pkg: str) -> bool:
    return any(re.search(rf"\b{re.escape(pkg)}\.", d.text) for d in decls
               if d.kind not in ("import", "package"))
