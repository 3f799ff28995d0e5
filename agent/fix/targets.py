"""What `fix` was pointed at: .go files, a package folder, or a `go list` pattern.

A pattern (`./...`, `./cmd/...`, an import path) is scanned once on a scratch copy in the
sandbox — `go list`, one `go test -json` and one `go vet` over it — and only the packages
that fail are worked on; the ones that pass are left alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from pydantic import BaseModel, Field

from agent.fix.goenv import UserGoEnv, missing_from_output, sandboxed, with_wall
from agent.fix.session import FixError, FixSite, find_module_root, scratch_copy
from tools.go import find_toolchain
from tools.sandbox import Limits

_POS_RE = re.compile(r"^(?:\./)?([^\s:][^:\n]*?\.go):\d+(?::\d+)?: ")
SCAN_SECONDS = 600.0


def is_pattern(arg: str) -> bool:
    """A `go list` pattern rather than a path: `...` in it, or no such file or folder."""
    if "..." in arg:
        return True
    return not os.path.lexists(arg) and not arg.endswith(".go") and bool(arg.strip())


def package_files(folder: Path) -> list[Path]:
    """The .go files `fix FOLDER` edits: its non-test files (its tests when it has only those)."""
    names = sorted(p for p in folder.iterdir()
                   if p.suffix == ".go" and not p.name.startswith((".", "_"))
                   and p.is_file())
    if not names:
        raise FixError(f"{folder}: is a directory with no .go files; name a package folder, "
                       ".go files or a pattern such as ./...")
    code = [p for p in names if not p.name.endswith("_test.go")]
    return code or names


class ScanResult(BaseModel):
    module_root: Path
    failing: list[Path] = Field(default_factory=list)  # package folders, in go list order
    passing: list[str] = Field(default_factory=list)  # as relative folders, for display


def _list(out: str, src: Path) -> list[tuple[str, str]]:
    """(import path, folder relative to the module root) per `go list` line."""
    pkgs = []
    for line in out.splitlines():
        if "\x1f" not in line:
            continue
        path, folder = line.split("\x1f", 1)
        try:
            rel = Path(folder).relative_to(src).as_posix()
        except ValueError:
            continue  # a package outside the module (a dependency): never ours to edit
        pkgs.append((path, rel))
    return pkgs


def _failed_packages(test_out: str) -> set[str]:
    failed: set[str] = set()
    for line in test_out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("Action") == "fail" and not ev.get("Test"):
                failed.add(ev.get("Package") or ev.get("ImportPath") or "")
            elif ev.get("Action") == "build-fail" and ev.get("ImportPath"):
                failed.add(ev["ImportPath"].split(" ")[0])
        elif line.startswith("FAIL\t"):
            failed.add(line.split("\t")[1].split(" ")[0])
    return failed


def scan(patterns: list[str], cwd: Path, env: UserGoEnv, limits: Limits) -> ScanResult:
    """The packages `patterns` names (from `cwd`'s module) and which of them fail."""
    root = find_module_root(cwd.resolve())
    if root is None:
        raise FixError(f"{' '.join(patterns)}: a package pattern needs a Go module (no go.mod "
                       f"in {cwd} or above)")
    site = FixSite(targets=[], package="", package_dir=root, module_root=root)
    ws = scratch_copy(site)
    try:
        ws.prepare()
        rel_cwd = cwd.resolve().relative_to(root)
        run_in = ws.src / rel_cwd
        go = str(find_toolchain().go)
        lim = with_wall(limits, SCAN_SECONDS)
        listed = sandboxed(ws, [go, "list", "-e", "-f", "{{.ImportPath}}\x1f{{.Dir}}",
                                *patterns], env, limits=lim, cwd=run_in)
        text = listed.output.decode(errors="replace")
        if (missing := missing_from_output(text, root)) is not None:
            raise FixError(missing)
        pkgs = _list(text, ws.src)
        if not pkgs:
            first = next((ln for ln in text.splitlines() if ln.strip()), "")
            raise FixError(f"{' '.join(patterns)}: no packages to fix in {root}"
                           + (f" ({first.strip()})" if first else ""))
        tested = sandboxed(ws, [go, "test", "-json", "-count=1", *patterns], env, limits=lim,
                           cwd=run_in)
        test_out = tested.output.decode(errors="replace")
        if (missing := missing_from_output(test_out, root)) is not None:
            raise FixError(missing)
        failed = _failed_packages(test_out)
        vet = sandboxed(ws, [go, "vet", *patterns], env, limits=lim, cwd=run_in)
        vet_dirs = set()
        for line in vet.output.decode(errors="replace").splitlines():
            m = _POS_RE.match(line.strip())
            if m:
                p = Path(m.group(1))
                full = p if p.is_absolute() else run_in / p
                try:
                    vet_dirs.add(full.parent.resolve().relative_to(ws.src.resolve()).as_posix())
                except ValueError:
                    continue
        result = ScanResult(module_root=root)
        for path, rel in pkgs:
            rel = rel or "."
            if path in failed or rel in vet_dirs or (rel == "." and "." in vet_dirs):
                result.failing.append(root / rel if rel != "." else root)
            else:
                result.passing.append("./" + rel if rel != "." else ".")
        return result
    finally:
        ws.cleanup()
