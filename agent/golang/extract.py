"""Go code out of model text: fences with or without tags, several files, junk around it."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from agent.golang.source import Decl, assemble, balanced, imports_of, split_decls
from agent.models.base import clean_text

DEFAULT_FILE = "solution.go"
_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*$", re.M)
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
        before = text[max(0, m.start() - 400):m.start()]
        blocks.append(Block(code=code, lang=lang, name=_name_hint(before, code),
                            closed=c is not None))
        if not c:
            break
        pos = c.end()
    return blocks


def _name_hint(before: str, code: str) -> str | None:
    """The file name announced on the line before a block or in its first comment line.

    A line that only names a file (`// file: NAME`, `// NAME.go`, `NAME.go:`) declares it,
    and the extractor holds the model to it (`check_file_name`). A name merely mentioned
    in prose is used only when it is a valid one; otherwise the block keeps the default.
    """
    first = code.lstrip().split("\n", 1)[0] if code.strip() else ""
    if first.startswith("//"):
        got = _declared_name(first[2:]) or _mentioned_name(first[:_PROSE_LINE])
        if got is not None:
            return got
    line = before.rstrip().rsplit("\n", 1)[-1].strip() if before.strip() else ""
    if line:
        got = _declared_name(line.removeprefix("//"))
        if got is not None:
            return got
        if len(line) < _PROSE_LINE:
            return _mentioned_name(line)
    return None


_PROSE_LINE = 120
_LABEL = re.compile(r"^\s*(?:file|filename|file name)\s*:", re.I)
_QUOTES = "`'\"*"


def _strip_token(tok: str) -> str:
    return tok.rstrip(".").strip(_QUOTES + "()[],;").rstrip(":").strip(_QUOTES)


def _declared_name(line: str) -> str | None:
    """The name a line declares: the word after a `file:` label when it looks like a file
    name at all (so `file: go.mod` is refused rather than ignored, while `// File: string
    helpers` stays a comment), or the whole line when it is one `*.go` word."""
    labelled = _LABEL.match(line)
    words = line[labelled.end():].split() if labelled else line.split()
    if not words:
        return None
    name = _strip_token(words[0])
    if labelled and (any(c in name for c in "./\\") or not name.isprintable()):
        return name
    if len(words) == 1 and name.endswith(".go"):
        return name
    return None


def _mentioned_name(line: str) -> str | None:
    """The first valid `*.go` name in a line of prose."""
    for tok in line.split():
        name = _strip_token(tok.rstrip("."))
        if name.endswith(".go"):
            try:
                return check_file_name(name)
            except FormatError:
                return None
    return None


MAX_NAME_CHARS = 64
_NAME_CHARS = re.compile(r"^[A-Za-z0-9_.-]+$")
_GOOS = frozenset({
    "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js",
    "linux", "nacl", "netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos"})
_GOARCH = frozenset({
    "386", "amd64", "amd64p32", "arm", "armbe", "arm64", "arm64be", "loong64", "mips",
    "mipsle", "mips64", "mips64le", "mips64p32", "mips64p32le", "ppc", "ppc64", "ppc64le",
    "riscv", "riscv64", "s390", "s390x", "sparc", "sparc64", "wasm"})


def _platform_suffix(name: str) -> str | None:
    """The `_GOOS`/`_GOARCH` suffix that would make Go build the file on one platform only."""
    stem = name.removesuffix(".go").removesuffix("_test")
    if "_" not in stem:
        return None
    parts = stem[stem.index("_"):].split("_")
    if len(parts) >= 3 and parts[-2] in _GOOS and parts[-1] in _GOARCH:
        return f"_{parts[-2]}_{parts[-1]}"
    if parts[-1] in _GOOS or parts[-1] in _GOARCH:
        return f"_{parts[-1]}"
    return None


def check_file_name(name: str) -> str:
    """`name` if a model answer may name a file so; FormatError (told to the model) if not.

    The one rule for model-chosen names: a plain `*.go` file in the package folder, that
    Go builds on every platform. No folders, no hidden or `_` files (Go skips them), no
    go.mod, no control characters or non-ASCII, nothing long.
    """
    shown = repr(name) if len(name) <= 40 else repr(name[:37]) + "…"
    why: str | None = None
    if not name:
        why = "is empty"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        why = "contains control characters"
    elif len(name) > MAX_NAME_CHARS:
        why = f"is {len(name)} characters long (at most {MAX_NAME_CHARS})"
    elif "/" in name or "\\" in name:
        why = "has a folder in it; write only the file name, the package is one folder"
    elif name in ("go.mod", "go.sum", "go.work"):
        why = "is managed by the harness"
    elif not name.endswith(".go") or name == ".go":
        why = "is not a .go file; answer with Go source files only"
    elif name.startswith((".", "_")):
        why = "starts with '.' or '_', so Go would ignore the file"
    elif not _NAME_CHARS.match(name):
        why = "may only use ASCII letters, digits, '_', '-' and '.'"
    elif suffix := _platform_suffix(name):
        why = f"ends in {suffix}, so Go would build it on that platform only"
    if why:
        raise FormatError(f"file name {shown} {why} (use a name like {DEFAULT_FILE})")
    return name


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


def normalise_answer(text: str) -> str:
    """Model text as the extractors read it: encodable, LF line ends, no byte-order marks
    (Go refuses a BOM anywhere but at the very start, and a stray one hides a fence)."""
    text = clean_text(text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\ufeff", "")


_IMPORT_C = re.compile(r'^import[ \t]+"C"[ \t]*(?://[^\n]*)?(?:\n|$)', re.M)
_BLOCK_COMMENT = re.compile(r"/\*(?:[^*]|\*(?!/))*\*/")


def _preamble_start(before: str) -> int:
    """Where the comment group directly above the end of `before` starts (len: none).

    cgo's preamble is the comment group right above `import "C"`: // lines and /* */
    comments with no blank line between them. Found by walking back line by line, so the
    cost stays linear.
    """
    pos = len(before)  # `before` ends at a line start
    while pos > 0:
        line_start = before.rfind("\n", 0, pos - 1) + 1
        line = before[line_start:pos - 1].rstrip()
        if line.lstrip().startswith("//"):
            pos = line_start
        elif line.endswith("*/"):
            opener = before.rfind("/*", 0, line_start + len(line) - 2)
            start = before.rfind("\n", 0, opener) + 1
            if opener < 0 or before[start:opener].strip():
                break
            pos = start
        else:
            break
    return pos


def _take_cgo(code: str) -> tuple[str, str | None]:
    """(code without its `import "C"` declaration, that declaration with its preamble
    verbatim, or None). cgo needs both exactly as written and kept together."""
    m = _IMPORT_C.search(code)
    if m is None:
        return code, None
    start = _preamble_start(code[:m.start()])
    decl = code[start:m.end()].rstrip("\n") + "\n"
    rest = _IMPORT_C.sub("", code[:start] + "\n" + code[m.end():])  # and any repeat
    return rest, decl


def _import_specs(decls: list[Decl]) -> list[tuple[str | None, str]]:
    """Import specs of `decls`; strings inside /* */ comments are not imports."""
    return imports_of([Decl(kind=d.kind, text=_BLOCK_COMMENT.sub("", d.text), name=d.name)
                       for d in decls if d.kind == "import"])


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
    text = normalise_answer(text)
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
    cgo: dict[str, str] = {}
    for b in blocks:
        code = _cut_repetition(_strip_line_numbers(b.code, notes), notes)
        name = check_file_name(b.name) if b.name else default_name
        if name.endswith("_test.go"):
            dropped.append(f"file {name} (tests are provided; yours are not used)")
            continue
        if name in protected:
            dropped.append(f"file {name} (it may not be changed)")
            continue
        code, cgo_decl = _take_cgo(code)
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
        imports.setdefault(name, []).extend(_import_specs(keep))
        if cgo_decl is not None:
            cgo[name] = cgo_decl
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
        if name in cgo:
            # cgo reads the comment right above `import "C"`: it stays verbatim and apart.
            head, body = files[name].split("\n", 1)
            files[name] = f"{head}\n\n{cgo[name]}{body}"
    return Extraction(files=files, dropped=dropped, notes=notes)


def _uses(decls: list[Decl], pkg: str) -> bool:
    return any(re.search(rf"\b{re.escape(pkg)}\.", d.text) for d in decls
               if d.kind not in ("import", "package"))


def fence_files(files: dict[str, str]) -> str:
    """Go files as the model is asked to write them (and as `extract_code` reads them
    back): one ```go block each, a `// file: NAME` line first when there are several. A
    fence is longer than any backtick run in its source (a raw string may hold ```)."""
    def one(name: str | None, src: str) -> str:
        longest = max((len(m) for m in re.findall(r"`+", src)), default=0)
        f = "`" * max(3, longest + 1)
        head = f"// file: {name}\n" if name else ""
        return f"{f}go\n{head}{src.rstrip()}\n{f}"

    if len(files) == 1:
        return one(None, next(iter(files.values())))
    return "\n\n".join(one(n, c) for n, c in files.items())
