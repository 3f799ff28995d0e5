"""Edits to a user's existing Go files out of model text: whole files or search/replace blocks.

`fix` works on files people wrote, so unlike `extract_code` (which rebuilds a file from its
declarations) nothing here reformats what the model did not touch: a whole file is taken
as written, a snippet without a package clause replaces only the declarations it names,
and a search/replace block changes only the lines it quotes.

Block format (fences around it are allowed; the file name is optional with one file):

    <<<<<<< SEARCH big.go
    exact lines from the file
    =======
    the lines that replace them
    >>>>>>> REPLACE
"""

from __future__ import annotations

import re
from enum import Enum

from pydantic import BaseModel, Field

from agent.golang.extract import (
    _NON_GO_LANGS,
    Block,
    Extraction,
    FormatError,
    check_file_name,
    find_blocks,
    normalise_answer,
    unfenced_code,
)
from agent.golang.source import Decl, keep_doc, split_decls

BLOCKS_OVER_LINES = 150  # longer files are edited with blocks: rewriting them costs too much

_BLOCK_RE = re.compile(
    r"^[ \t]*<{5,9}[ \t]*SEARCH(?:[ \t]+(?P<name>[\w./-]+\.go))?[ \t]*\n"
    r"(?P<search>.*?)"
    r"^[ \t]*={5,9}[ \t]*\n"
    r"(?P<replace>.*?)"
    r"^[ \t]*>{5,9}[ \t]*REPLACE[ \t]*$",
    re.M | re.S,
)
_NAME_LINE = re.compile(r"([\w./-]+\.go)\s*:?\s*`*\s*$")
_PACKAGE_LINE = re.compile(r"^package\s+(\w+)", re.M)
_FILE_COMMENT = re.compile(r"^\s*//\s*(?:file:\s*)?[\w./-]+\.go\s*\n")


class EditMode(str, Enum):
    whole = "whole"  # the model rewrites the file
    blocks = "blocks"  # the model sends search/replace blocks


def choose_modes(files: dict[str, str], block_lines: int = BLOCKS_OVER_LINES
                 ) -> dict[str, EditMode]:
    """Whole files for small files (small models do better), blocks above `block_lines`."""
    return {n: EditMode.blocks if len(c.splitlines()) > block_lines else EditMode.whole
            for n, c in files.items()}


class EditRules(BaseModel):
    """Which files an answer may change, and what it may not add to them."""

    package: str
    editable: list[str]  # names relative to the package directory
    protected: list[str] = Field(default_factory=list)  # the package's other files

    def refusal(self, name: str) -> str | None:
        """Why `name` may not be changed, or None when it may."""
        if name in self.editable:
            return None
        allowed = ", ".join(self.editable)
        try:
            check_file_name(name)
        except FormatError as exc:
            return f"{exc}; change only {allowed}"
        if name.endswith("_test.go"):
            return f"file {name} (the tests may not be changed; change only {allowed})"
        if name in self.protected:
            return f"file {name} (it may not be changed; change only {allowed})"
        return f"file {name} (not one of the files you may change: {allowed})"


def _base(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _block_name(text: str, start: int, explicit: str | None) -> str | None:
    """The file a block names: on its SEARCH line, or on the last line before it."""
    if explicit:
        return _base(explicit)
    before = [ln for ln in text[max(0, start - 300):start].splitlines() if ln.strip()]
    for ln in reversed(before[-2:]):
        if ln.strip().startswith(("```", "~~~")):
            continue
        m = _NAME_LINE.search(ln.strip())
        return _base(m.group(1)) if m else None
    return None


def _lines_at(source: str) -> tuple[list[str], list[int]]:
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))
    return lines, offsets


def _locate(source: str, search: str) -> tuple[list[tuple[int, int]], bool]:
    """Spans of whole lines of `source` that `search` quotes, and whether it was exact.

    Exact lines first, then ignoring indentation: small models re-indent quoted code (tabs
    to spaces) and drop trailing blanks; the stripped lines still pin the place most times.
    """
    want = search.strip("\n").splitlines()
    if not want or not "".join(want).strip():
        return [], True
    lines, offsets = _lines_at(source)
    bare = [ln.rstrip("\r\n") for ln in lines]
    for exact, norm in ((True, lambda x: x.rstrip()), (False, lambda x: x.strip())):
        w = [norm(x) for x in want]
        h = [norm(x) for x in bare]
        spans = [(offsets[i], offsets[i + len(w)]) for i in range(len(h) - len(w) + 1)
                 if h[i:i + len(w)] == w]
        if spans:
            return spans, exact
    return [], False


def _replacement(replace: str, matched: str, exact: bool) -> str:
    """The REPLACE text as whole lines, indented like the matched lines when it was not."""
    text = replace.strip("\n")
    if not text.strip():
        return ""
    lines = text.splitlines()
    indent = matched[: len(matched) - len(matched.lstrip(" \t"))]
    if not exact and indent and not lines[0][:1].isspace():
        lines = [indent + ln if ln.strip() else ln for ln in lines]
    return "\n".join(lines) + "\n"


def apply_blocks(text: str, current: dict[str, str], rules: EditRules
                 ) -> tuple[dict[str, str], list[str], list[str]] | None:
    """Apply every search/replace block in `text`; None when it holds none.

    Returns (files changed, refused edits, problems). A block whose SEARCH text is missing
    or ambiguous is a problem: half an edit would leave code the model never saw.
    """
    matches = list(_BLOCK_RE.finditer(text))
    if not matches:
        return None
    files = dict(current)
    changed: set[str] = set()
    dropped: list[str] = []
    problems: list[str] = []
    for n, m in enumerate(matches, 1):
        search, replace = m.group("search"), m.group("replace")
        name = _block_name(text, m.start(), m.group("name"))
        if name is None:
            if len(rules.editable) == 1:
                name = rules.editable[0]
            else:
                hits = [f for f in rules.editable if len(_locate(files[f], search)[0]) == 1]
                if len(hits) != 1:
                    problems.append(f"block {n} does not say which file it edits "
                                    "(write the file name after SEARCH)")
                    continue
                name = hits[0]
        why = rules.refusal(name)
        if why is not None:
            if why not in dropped:
                dropped.append(why)
            continue
        spans, exact = _locate(files[name], search)
        if not spans:
            first = search.strip().splitlines()[0][:80] if search.strip() else ""
            problems.append(f"block {n}: the SEARCH text was not found in {name}"
                            + (f" (it starts {first!r})" if first else "")
                            + "; copy the lines exactly from the file")
            continue
        if len(spans) > 1:
            problems.append(f"block {n}: the SEARCH text occurs {len(spans)} times in {name}; "
                            "include more lines so it is unique")
            continue
        lo, hi = spans[0]
        src = files[name]
        files[name] = src[:lo] + _replacement(replace, src[lo:hi], exact) + src[hi:]
        changed.add(name)
    return {n: files[n] for n in changed}, dropped, problems


def _defines(decls: list[Decl]) -> set[tuple[str, str]]:
    return {(d.kind, d.name) for d in decls if d.name and d.kind not in ("package", "import")}


def _strip_additions(code: str, original: str, package: str, notes: list[str]) -> str:
    """Drop tests and a stray `func main` the model added to a non-test file."""
    had = _defines(split_decls(original))
    keep: list[str] = []
    for d in split_decls(code):
        added = ("func", d.name) not in had
        if added and d.is_test:
            notes.append(f"func {d.name}")
        elif added and d.kind == "func" and d.name == "main" and package != "main":
            notes.append("func main")
        else:
            keep.append(d.text)
    return "".join(keep)


def _merge_snippet(original: str, snippet: str) -> str:
    """Replace the declarations a snippet redefines; append the ones it adds."""
    new = [d for d in split_decls(snippet) if d.kind in ("func", "type", "var", "const")]
    if not new:
        raise FormatError("the code block holds no Go declarations")
    by_key = {(d.kind, d.name): d for d in new if d.name}
    out: list[str] = []
    used: set[tuple[str, str]] = set()
    for d in split_decls(original):
        key = (d.kind, d.name)
        if d.name and key in by_key:
            # The blank lines before the old declaration stay; so does its doc comment
            # when the snippet brings none.
            lead = d.text[:len(d.text) - len(d.text.lstrip("\n"))]
            out.append(lead + keep_doc(d.text, by_key[key].text).strip("\n") + "\n")
            used.add(key)
        else:
            out.append(d.text)
    extra = [d for d in new if (d.kind, d.name) not in used]
    text = "".join(out).rstrip("\n") + "\n"
    for d in extra:
        text += "\n" + d.text.strip("\n") + "\n"
    return text


def _whole_file(code: str, name: str, original: str, package: str,
                dropped: list[str], notes: list[str]) -> str:
    code = _FILE_COMMENT.sub("", code, count=1) if _FILE_COMMENT.match(code) else code
    if not _PACKAGE_LINE.search(code):
        notes.append(f"{name}: merged the declarations of a partial answer")
        return _merge_snippet(original, code)
    m = _PACKAGE_LINE.search(code)
    want = _PACKAGE_LINE.search(original)
    if m and want and m.group(1) != want.group(1):
        notes.append(f"package {m.group(1)} changed to package {want.group(1)}")
        code = code[:m.start(1)] + want.group(1) + code[m.end(1):]
    if not name.endswith("_test.go"):
        removed: list[str] = []
        code = _strip_additions(code, original, package, removed)
        dropped += removed
        had_code = any(d.kind in ("func", "type", "var", "const") for d in split_decls(original))
        if had_code and not any(d.kind in ("func", "type", "var", "const")
                                for d in split_decls(code)):
            # Only tests (moved aside) or imports: never let that wipe the user's file.
            raise FormatError(f"the answer for {name} holds only tests or imports, not the "
                              "corrected code")
    return code.rstrip("\n") + "\n"


def parse_edit_answer(text: str, current: dict[str, str], rules: EditRules) -> Extraction:
    """The editable files after the answer's edits (blocks if any, else fenced files).

    Raises FormatError, told to the model, when nothing usable remains.
    """
    dropped: list[str] = []
    notes: list[str] = []
    text = normalise_answer(text)
    got = apply_blocks(text, current, rules)
    if got is not None:
        changed, dropped, problems = got
        if problems:
            raise FormatError("; ".join(problems))
        notes.append("search/replace blocks: " + (", ".join(sorted(changed)) or "none applied"))
    else:
        changed = {}
        blocks = [b for b in find_blocks(text) if b.lang in ("go", "golang")
                  or (b.lang not in _NON_GO_LANGS and re.search(r"^\s*(package|func|type)\s",
                                                                 b.code, re.M))]
        if not blocks and (raw := unfenced_code(text)):
            blocks = [Block(code=raw)]  # code written without (or with half a) fence
        for b in blocks:
            name = _base(b.name) if b.name else None
            if name is None:
                if len(rules.editable) != 1:
                    dropped.append("an unnamed code block (start each block with "
                                   "`// file: NAME.go`)")
                    continue
                name = rules.editable[0]
            why = rules.refusal(name)
            if why is not None:
                if why not in dropped:
                    dropped.append(why)
                continue
            base = changed.get(name, current[name])
            changed[name] = _whole_file(b.code, name, base, rules.package, dropped, notes)
    if not changed:
        if dropped:
            raise FormatError("nothing usable was changed: refused " + "; ".join(dropped))
        raise FormatError("no Go code block or search/replace block found in the answer")
    files = {n: current[n] for n in rules.editable}
    files.update(changed)
    return Extraction(files=files, dropped=dropped, notes=notes)
