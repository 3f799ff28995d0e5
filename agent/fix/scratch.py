"""What `fix` copies of a user's module for model code to build and run: only the build's files.

Model code runs in the copy and may read anything there, and what it prints reaches the
feedback and the trajectory. So the copy holds what `go test` needs and nothing else:
Go package sources, go.mod/go.sum/go.work(.sum), `testdata/` trees, `vendor/`, and the
files the package's `//go:embed` lines name. Never a dot-entry (`.env`, `.ssh/`, `.git/`),
never a file named like a secret, never anything reached through a link that leaves the
module, and never more than a cap of files and bytes.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from pathlib import Path, PurePosixPath

# File kinds `go build` reads from a package directory (go/build's source extensions).
SOURCE_SUFFIXES = {".go", ".s", ".S", ".sx", ".c", ".cc", ".cpp", ".cxx", ".h", ".hh", ".hpp",
                   ".hxx", ".f", ".F", ".for", ".f90", ".m", ".swig", ".swigcxx", ".syso"}
ROOT_FILES = {"go.mod", "go.sum", "go.work", "go.work.sum"}
MAX_FILES = 20_000
MAX_BYTES = 256 * 1024 * 1024
MAX_ENTRIES = 200_000  # entries looked at: a go.mod in $HOME must not walk the whole disk
NOT_GO = {"node_modules"}  # folders of other ecosystems no Go build reads
MAX_DATA_FILE_BYTES = 8 * 1024 * 1024  # a larger non-source file is skipped, not copied
# Not a dot-entry, yet plainly a credential: never copied, whatever names it.
_SECRET_RE = re.compile(
    r"^(id_(rsa|dsa|ecdsa|ed25519)(_sk)?|_netrc|credentials(\.[\w.]+)?|"
    r".*\.(env|kdbx|tfstate|p12|pfx|jks|keystore))$", re.I)
_EMBED_RE = re.compile(r"^[ \t]*//go:embed[ \t]+(.*)$", re.M)


class CopyError(ValueError):
    """The module cannot be copied as asked (too large, a bad replace): one line."""


def is_private(name: str) -> bool:
    """A name the copy never holds: hidden entries and credential-like files."""
    return name.startswith(".") or bool(_SECRET_RE.match(name))


def embed_patterns(source: str) -> list[str]:
    """The patterns of a Go file's `//go:embed` lines (bare, "quoted" or `raw`)."""
    out: list[str] = []
    for line in _EMBED_RE.findall(source):
        rest = line.strip()
        while rest:
            if rest.startswith("//"):
                break
            if rest[0] in "\"`":
                end = rest.find(rest[0], 1)
                if end < 0:
                    break
                out.append(rest[1:end])
                rest = rest[end + 1:].lstrip()
            else:
                word, _, rest = rest.partition(" ")
                out.append(word.split("\t")[0])
                rest = rest.lstrip()
    return out


def _read_regular(path: Path, size: int) -> bytes:
    """A regular file's bytes; a FIFO, device or (raced-in) link raises OSError, never blocks."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        chunks: list[bytes] = []
        got = 0
        while got <= size:  # a file that grew since lstat is read up to its size, no more
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)[:size]
    finally:
        os.close(fd)


class ModuleCopy:
    """Copies a module's build files from `root` into `dest`, counting against the caps."""

    def __init__(self, dest: Path, *, max_files: int = MAX_FILES,
                 max_bytes: int = MAX_BYTES) -> None:
        self.dest = dest
        self.max_files = max_files
        self.max_bytes = max_bytes
        self.files = 0
        self.bytes = 0
        self.entries = 0
        self.skipped: list[str] = []  # what was left out, for the trajectory

    # -- entry points -------------------------------------------------------------------
    def module(self, root: Path, into: PurePosixPath | None = None) -> None:
        """A whole module (into dest/`into`): every package's sources, testdata, vendor
        and embed targets."""
        self._walk(root.resolve(), PurePosixPath(), into or PurePosixPath(), recursive=True)

    def package(self, pkg_dir: Path) -> None:
        """One folder without a go.mod: its sources, its testdata and its embed targets."""
        self._walk(pkg_dir.resolve(), PurePosixPath(), PurePosixPath(), recursive=False)

    # -- walking ------------------------------------------------------------------------
    def _walk(self, root: Path, rel: PurePosixPath, into: PurePosixPath, *,
              recursive: bool) -> None:
        here = root / rel
        sources: list[PurePosixPath] = []
        for entry in self._entries(here):
            name = entry.name
            if is_private(name):
                self.skipped.append((into / rel / name).as_posix())
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if name == "testdata" or (rel == PurePosixPath() and name == "vendor"
                                          and recursive):
                    self._tree(root, rel / name, into)
                elif recursive and name not in NOT_GO and not (here / name / "go.mod").exists():
                    self._walk(root, rel / name, into, recursive=True)  # not a nested module
                continue
            is_source = Path(name).suffix in SOURCE_SUFFIXES
            if not is_source and not (rel == PurePosixPath() and name in ROOT_FILES):
                continue
            if self._file(root, rel / name, into, st, source=True) and name.endswith(".go"):
                sources.append(rel / name)
        for src in sources:
            try:
                text = (self.dest / into / src).read_text(errors="replace")
            except OSError:
                continue
            for pattern in embed_patterns(text):
                self._embed(root, rel, into, pattern)

    def _entries(self, d: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(d) as it:
                found = sorted(it, key=lambda e: e.name)
        except OSError:
            self.skipped.append(f"{d} (unreadable)")
            return []
        self.entries += len(found)
        if self.entries > MAX_ENTRIES:
            raise CopyError(f"the module is too large to copy for fix (over {MAX_ENTRIES} "
                            "files and folders to look through)")
        return found

    def _tree(self, root: Path, rel: PurePosixPath, into: PurePosixPath, *,
              all_files: bool = True, embedded: bool = False) -> None:
        """Every file under root/rel (testdata, vendor, an embedded folder), links inside
        the module as copies of their targets, private names skipped. A testdata tree
        keeps its nested modules (fixtures for tools' tests); Go embeds none."""
        for entry in self._entries(root / rel):
            name = entry.name
            if is_private(name):
                self.skipped.append((into / rel / name).as_posix())
                continue
            if not all_files and name.startswith("_"):
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if not (embedded and (root / rel / name / "go.mod").exists()):
                    self._tree(root, rel / name, into, all_files=all_files,
                               embedded=embedded)
            else:
                self._file(root, rel / name, into, st,
                           source=Path(name).suffix in SOURCE_SUFFIXES)

    def _file(self, root: Path, rel: PurePosixPath, into: PurePosixPath,
              st: os.stat_result, *, source: bool) -> bool:
        """Copy one regular file (or a link to one inside the module); False if skipped."""
        src = root / rel
        out = self.dest / into / rel
        if out.exists():
            return True  # named twice (testdata and an embed pattern): one copy
        if stat.S_ISLNK(st.st_mode):
            target = Path(os.path.realpath(src))
            try:
                inside = target.relative_to(root)
            except ValueError:
                self.skipped.append(f"{(into / rel).as_posix()} (a link out of the module)")
                return False
            if any(is_private(p) for p in inside.parts):
                self.skipped.append(f"{(into / rel).as_posix()} (a link to a private file)")
                return False
            try:
                st = target.stat()
            except OSError:
                return False
            src = target
        if not stat.S_ISREG(st.st_mode):
            return False  # FIFOs, sockets, devices: never opened
        if not source and st.st_size > MAX_DATA_FILE_BYTES:
            self.skipped.append(f"{(into / rel).as_posix()} (over {MAX_DATA_FILE_BYTES} bytes)")
            return False
        self.files += 1
        self.bytes += st.st_size
        if self.files > self.max_files or self.bytes > self.max_bytes:
            raise CopyError(f"the module is too large to copy for fix (over {self.max_files} "
                            f"files or {self.max_bytes // (1024 * 1024)} MiB of build files)")
        try:
            data = _read_regular(src, st.st_size)
        except OSError:
            if source:
                raise CopyError(f"{src}: cannot read a file the build needs") from None
            self.skipped.append(f"{(into / rel).as_posix()} (unreadable)")
            return False
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
        os.chmod(out, stat.S_IMODE(st.st_mode) & 0o755 | 0o600)
        return True

    # -- //go:embed ---------------------------------------------------------------------
    def _embed(self, root: Path, pkg: PurePosixPath, into: PurePosixPath, pattern: str) -> None:
        """The files one embed pattern names, resolved inside the package's folder.

        As Go does: a folder match takes its tree minus `.`/`_` names unless `all:`.
        Stricter than Go: private names are never copied even when named outright, and
        `*` never matches a dot-name.
        """
        all_files = pattern.startswith("all:")
        pattern = pattern.removeprefix("all:")
        parts = pattern.split("/")
        if (not pattern or pattern.startswith("/") or "\\" in pattern
                or any(p in ("", ".", "..") for p in parts)):
            return  # Go rejects these itself; nothing to copy
        self._embed_match(root, pkg, into, [p.replace("[^", "[!") for p in parts], all_files)

    def _embed_match(self, root: Path, rel: PurePosixPath, into: PurePosixPath,
                     parts: list[str], all_files: bool) -> None:
        head, rest = parts[0], parts[1:]
        for entry in self._entries(root / rel):
            name = entry.name
            if is_private(name) or not fnmatch.fnmatchcase(name, head):
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if (root / rel / name / "go.mod").exists():
                    continue
                if rest:
                    self._embed_match(root, rel / name, into, rest, all_files)
                else:
                    self._tree(root, rel / name, into, all_files=all_files, embedded=True)
            elif not rest and stat.S_ISREG(st.st_mode):
                # Go embeds no links: only a regular file counts.
                self._file(root, rel / name, into, st,
                           source=Path(name).suffix in SOURCE_SUFFIXES)
