"""`fix` on a user's files that are hostile or odd: secrets beside the module, links, CRLF
and BOM, read-only places, FIFOs, Ctrl-C at the prompt, answers that are not text.

Every case runs the real command in its own process (`python -m agent.cli fix`) on a real
Go module in tmp_path, with scripted model answers, and checks the user's bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

import agent.fix.session as fixlib
from agent.fix.scratch import ModuleCopy, embed_patterns
from agent.fix.session import (
    FixError,
    FixRequest,
    FixSession,
    StaleFileError,
    apply_changes,
    locate,
)
from tools.go import ToolchainError, find_toolchain
from tools.paths import cache_dir

try:
    find_toolchain()
except ToolchainError:  # pragma: no cover
    pytest.skip("no Go toolchain", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent

BROKEN = """// Package calc does arithmetic.
package calc

// Add returns a plus b.
func Add(a, b int) int {
\treturn a - b
}
"""
FIXED = BROKEN.replace("a - b", "a + b")
TESTS = """package calc

import "testing"

func TestAdd(t *testing.T) {
\tif got := Add(2, 3); got != 5 {
\t\tt.Fatalf("Add(2, 3) = %d, want 5", got)
\t}
}
"""


def fence(src: str) -> str:
    return f"Here is the fix:\n```go\n{src.rstrip()}\n```\n"


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def tree(root: Path) -> dict[str, str]:
    """Every entry under root: file hashes, link targets, and kinds of the rest."""
    out: dict[str, str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = sha(p)
        elif p.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = "other"
    return out


def module(root: Path, source: str = BROKEN, tests: str = TESTS) -> Path:
    (root / "calc").mkdir(parents=True)
    (root / "go.mod").write_text("module example.com/calcmod\n\ngo 1.22\n")
    (root / "calc" / "calc.go").write_text(source)
    (root / "calc" / "calc_test.go").write_text(tests)
    return root / "calc" / "calc.go"


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str], out: Path) -> None:
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        traj = out / "trajectory.jsonl"
        self.trajectory = traj.read_text() if traj.exists() else ""
        self.events = [json.loads(ln) for ln in self.trajectory.splitlines()]

    @property
    def requests(self) -> list[dict]:
        return [e for e in self.events if e["event"] == "request"]


def fix(tmp_path: Path, args: list[str], answers: list[str], *, cwd: Path | None = None,
        env: dict[str, str] | None = None, out: Path | None = None,
        prefix: list[str] | None = None, timeout: float = 240) -> Run:
    """The real command in its own process; a traceback anywhere fails the test."""
    replay = tmp_path / "replay.yaml"
    replay.write_text(yaml.safe_dump({"responses": answers}))
    out = out or tmp_path / "run"
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200",
                fixlib.BACKUPS_ENV: str(tmp_path / "backups"), **(env or {})}
    proc = subprocess.run(
        [*(prefix or []), sys.executable, "-m", "agent.cli", "fix", *args, "--backend",
         "replay", "--replay", str(replay), *(["--out", str(out)] if "--out" not in args
                                             else [])],
        cwd=cwd or tmp_path, env=full_env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return Run(proc, out)


def one_line_error(run: Run, code: int, *needles: str) -> None:
    assert run.code == code, (run.code, run.stdout, run.stderr)
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), run.stderr
    for n in needles:
        assert n in lines[0], lines[0]


# -- 1. the scratch copy holds the build's files only --------------------------------------

EMBEDDING = """// Package calc does arithmetic.
package calc

import (
\t"embed"

\t"example.com/helper"
)

//go:embed static
var static embed.FS

//go:embed all:assets
var assets embed.FS

// One is the helper's one.
var One = helper.One()

// Add returns a plus b.
func Add(a, b int) int {
\treturn a - b
}
"""
EMBED_TESTS = TESTS.replace('import "testing"', 'import (\n\t"os"\n\t"testing"\n)') + """
func TestFiles(t *testing.T) {
\tfor _, name := range []string{"static/page.html", "assets/_draft.txt"} {
\t\tvar err error
\t\tif name[0] == 's' {
\t\t\t_, err = static.ReadFile(name)
\t\t} else {
\t\t\t_, err = assets.ReadFile(name)
\t\t}
\t\tif err != nil {
\t\t\tt.Fatalf("embedded %s: %v", name, err)
\t\t}
\t}
\tfor _, name := range []string{"testdata/data.txt", "testdata/inside.txt"} {
\t\tif _, err := os.ReadFile(name); err != nil {
\t\t\tt.Fatalf("testdata: %v", err)
\t\t}
\t}
\tif One != 1 {
\t\tt.Fatal("the replaced module is not there")
\t}
}
"""


# The user's `a - b` is one token from passing: the search on the code as given (round 0)
# would fix it before the model is asked. Tests of what the model's code does turn it off.
NO_SEARCH = ["--no-fix", "one-token"]


def _spy(paths: list[str], roots: list[str], pruned: list[str]) -> str:
    """calc.go that reads every path and walks every root, and panics with what it found.

    The walk leaves out `pruned`: trees that only package managers and the Go toolchain
    write (the system's, Go's caches, the interpreter's). Read file by file they cost
    minutes on a well-used machine, longer than the test timeout, and no run of ours puts
    the user's files there. The panic says whether the walk ended, so a cut walk fails;
    it is upper-cased at run time, so the source line the feedback quotes cannot pass for it.
    """
    quoted = ", ".join(json.dumps(p) for p in paths)
    walked = ", ".join(json.dumps(r) for r in roots)
    skipped = ", ".join(json.dumps(r) for r in ["/proc", "/sys", "/dev", *pruned])
    return EMBEDDING.replace("import (\n\t\"embed\"\n", "import (\n\t\"embed\"\n\t\"io/fs\"\n"
                             "\t\"os\"\n\t\"path/filepath\"\n\t\"strings\"\n").replace(
        "func Add(a, b int) int {\n\treturn a - b\n}", f"""func Add(a, b int) int {{
\tfound := ""
\tfor _, p := range []string{{{quoted}}} {{
\t\tif b, err := os.ReadFile(p); err == nil {{
\t\t\tfound += p + "=" + string(b) + ";"
\t\t}}
\t}}
\tpruned := map[string]bool{{}}
\tfor _, r := range []string{{{skipped}}} {{
\t\tpruned[r] = true
\t}}
\tfor _, r := range []string{{{walked}}} {{
\t\t_ = filepath.WalkDir(r, func(p string, d fs.DirEntry, err error) error {{
\t\t\tif err != nil {{
\t\t\t\treturn nil
\t\t\t}}
\t\t\tif d.IsDir() && pruned[p] {{
\t\t\t\treturn filepath.SkipDir
\t\t\t}}
\t\t\tif info, ierr := d.Info(); ierr == nil && info.Mode().IsRegular() && info.Size() < 4096 {{
\t\t\t\tif b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), "SECRET") {{
\t\t\t\t\tfound += p + "=" + string(b) + ";"
\t\t\t\t}}
\t\t\t}}
\t\t\treturn nil
\t\t}})
\t}}
\tpanic(strings.ToUpper("walked, found:") + found + ":END")
}}""")


def test_the_copy_holds_no_secrets_and_still_builds(tmp_path: Path) -> None:
    m = tmp_path / "m"
    target = module(m, source=EMBEDDING, tests=EMBED_TESTS)
    (m / "go.mod").write_text("module example.com/calcmod\n\ngo 1.22\n\nrequire "
                              "example.com/helper v0.0.0\n\nreplace example.com/helper => "
                              "../helper\n")
    helper = tmp_path / "helper"
    helper.mkdir()
    (helper / "go.mod").write_text("module example.com/helper\n\ngo 1.22\n")
    (helper / "helper.go").write_text("package helper\n\nfunc One() int { return 1 }\n")
    (helper / ".env").write_text("SECRET-REPLACE-ENV\n")
    (tmp_path / "outside.txt").write_text("SECRET-OUTSIDE\n")
    secrets = {".env": "SECRET-ROOT-ENV", ".ssh/id_ed25519": "SECRET-SSH",
               "calc/.env": "SECRET-PKG-ENV", "prod.env": "SECRET-PROD-ENV",
               "id_rsa": "SECRET-ID-RSA", ".git/config": "SECRET-GIT",
               "calc/testdata/.hidden": "SECRET-TESTDATA-HIDDEN",
               "calc/static/.secret": "SECRET-STATIC-DOT",
               "calc/assets/.env": "SECRET-ALL-ENV", "notes.txt": "SECRET-NOTES",
               "calc/credentials.json": "SECRET-CREDENTIALS"}
    for rel, text in secrets.items():
        (m / rel).parent.mkdir(parents=True, exist_ok=True)
        (m / rel).write_text(text + "\n")
    (m / "calc" / "static" / "page.html").write_text("<p>page</p>\n")
    (m / "calc" / "assets" / "_draft.txt").write_text("draft\n")
    (m / "calc" / "testdata" / "data.txt").write_text("data\n")
    (m / "shared.txt").write_text("inside the module\n")
    (m / "calc" / "testdata" / "inside.txt").symlink_to("../../shared.txt")
    (m / "calc" / "testdata" / "out.txt").symlink_to(tmp_path / "outside.txt")
    (m / "calc" / "testdata" / "keys").symlink_to(m / ".ssh")  # a link to a private folder
    before = tree(m)
    helper_before = tree(helper)

    paths = [*(f"../{rel}" for rel in secrets), "testdata/out.txt", "testdata/keys/id_ed25519",
             str(helper / ".env"), "../_guild_replace/0/.env", str(tmp_path / "outside.txt"),
             *(str(m / rel) for rel in secrets)]
    pruned = {"/usr", str(cache_dir()), sys.prefix, sys.base_prefix,
              str(find_toolchain().goroot)}
    spy = _spy(paths, ["..", "/", str(tmp_path)],
               sorted(str(Path(p).resolve()) for p in pruned))
    run = fix(tmp_path, [str(target), "--yes", "--max-rounds", "2", *NO_SEARCH],
              [fence(spy), fence(EMBEDDING.replace("a - b", "a + b"))])
    assert run.code == 0, (run.stdout, run.stderr)
    # The model's spy ran to the end of its walk (its panic came back as feedback) and found
    # nothing private. A walk the test timeout cut would prove nothing.
    assert "WALKED, FOUND:" in run.requests[1]["messages"][-1]["content"]
    markers = [*secrets.values(), "SECRET-OUTSIDE", "SECRET-REPLACE-ENV"]
    seen = [k for k in markers if k in run.trajectory + run.stdout + run.stderr]
    assert seen == [], seen
    skipped = next(e for e in run.events if e["event"] == "fix_start")["copy_skipped"]
    assert ".env" in skipped and "calc/testdata/out.txt (a link out of the module)" in skipped
    assert "_guild_replace/0/.env" in skipped and len(skipped) == len(set(skipped))
    # Only calc.go changed; the rest of the tree, links included, is as it was.
    after = tree(m)
    assert after.pop("calc/calc.go") != before.pop("calc/calc.go")
    assert after == before and tree(helper) == helper_before
    assert target.read_text() == EMBEDDING.replace("a - b", "a + b")


def test_module_copy_resolves_embeds_like_go_minus_private_names(tmp_path: Path) -> None:
    assert embed_patterns('//go:embed a.txt "b c.txt" `d`\n//go:embed all:x // note\n') == [
        "a.txt", "b c.txt", "d", "all:x"]
    src = tmp_path / "m"
    (src / "web" / "sub").mkdir(parents=True)
    (src / "go.mod").write_text("module m\n\ngo 1.22\n")
    (src / "p.go").write_text("package p\n\nimport _ \"embed\"\n\n//go:embed .env\nvar e "
                              "string\n\n//go:embed web/*.html ../up.txt /abs\nvar w string\n"
                              "\n//go:embed all:web/sub\nvar s string\n")
    for rel in (".env", "web/a.html", "web/b.txt", "web/.c.html", "web/sub/_u.txt",
                "web/sub/.env", "web/sub/v.txt", "web/sub/id_rsa",
                "testdata/fixture/go.mod", "testdata/fixture/f.go", "testdata/.git/HEAD",
                "nested/go.mod", "nested/n.go", "node_modules/x/x.go", "vendor/modules.txt",
                "vendor/example.com/v/v.go", "vendor/example.com/v/.env", "README.md"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("x\n")
    (tmp_path / "up.txt").write_text("x\n")
    dest = tmp_path / "copy"
    dest.mkdir()
    ModuleCopy(dest).module(src)
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert got == ["go.mod", "p.go", "testdata/fixture/f.go", "testdata/fixture/go.mod",
                   "vendor/example.com/v/v.go", "vendor/modules.txt", "web/a.html",
                   "web/sub/_u.txt", "web/sub/v.txt"]


def test_a_module_too_large_to_copy_is_one_line(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    big = tmp_path / "m" / "gen" / "big.go"
    big.parent.mkdir()
    with big.open("wb") as fh:  # sparse: 300 MiB of "source" that costs no disk
        fh.truncate(300 * 1024 * 1024)
    run = fix(tmp_path, [str(target), "--yes"], [fence(FIXED)])
    one_line_error(run, 2, "too large to copy")
    assert sha(target) == hashlib.sha256(BROKEN.encode()).hexdigest()


def test_replace_to_a_folder_without_go_mod_is_one_line(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    (tmp_path / "m" / "go.mod").write_text("module example.com/calcmod\n\ngo 1.22\n\n"
                                           "replace example.com/x => ../nowhere\n")
    run = fix(tmp_path, [str(target), "--yes"], [fence(FIXED)])
    one_line_error(run, 2, "replace => ../nowhere", "not a module folder")


# -- 2. links stay links -------------------------------------------------------------------

def test_a_linked_file_is_fixed_through_the_link_and_undone(tmp_path: Path) -> None:
    m = tmp_path / "m"
    module(m)
    store = tmp_path / "store"
    store.mkdir()
    real = store / "calc.go"
    real.write_text(BROKEN)
    os.chmod(real, 0o640)
    link = m / "calc" / "calc.go"
    link.unlink()
    link.symlink_to(os.path.relpath(real, link.parent))
    before_link = os.readlink(link)
    run = fix(tmp_path, [str(link), "--yes"], [fence(FIXED)])
    assert run.code == 0, (run.stdout, run.stderr)
    assert link.is_symlink() and os.readlink(link) == before_link
    assert real.read_text() == FIXED
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in store.iterdir()) == ["calc.go"]  # no temp file left

    undo = fix(tmp_path, [str(link), "--undo"], [])
    assert undo.code == 0, undo.stderr
    assert link.is_symlink() and os.readlink(link) == before_link
    assert real.read_text() == BROKEN


def test_the_same_file_named_twice_through_a_link_is_refused(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    (target.parent / "alias.go").symlink_to("calc.go")
    run = fix(tmp_path, [str(target), str(target.parent / "alias.go"), "--yes"],
              [fence(FIXED)])
    one_line_error(run, 2, "are the same file")


def test_a_link_repointed_before_apply_is_stale(tmp_path: Path) -> None:
    m = tmp_path / "m"
    module(m)
    a, b = tmp_path / "a.go", tmp_path / "b.go"
    a.write_text(BROKEN)
    b.write_text(BROKEN)
    link = m / "calc" / "calc.go"
    link.unlink()
    link.symlink_to(a)
    site = locate([link])
    link.unlink()
    link.symlink_to(b)  # same bytes, another file: writing the old target is wrong now
    with pytest.raises(StaleFileError):
        apply_changes(site, {"calc.go": FIXED})
    assert a.read_text() == BROKEN and b.read_text() == BROKEN


# -- 3. line endings, BOM, final newline ---------------------------------------------------

@pytest.mark.parametrize("bom, crlf, final_newline", [
    (True, True, True), (False, True, True), (True, False, True), (False, False, False),
    (True, True, False)])
def test_line_endings_bom_and_final_newline_are_kept(tmp_path: Path, bom: bool, crlf: bool,
                                                     final_newline: bool) -> None:
    def disk(text: str) -> bytes:
        text = text if final_newline else text.rstrip("\n")
        text = text.replace("\n", "\r\n") if crlf else text
        return (b"\xef\xbb\xbf" if bom else b"") + text.encode()

    target = module(tmp_path / "m")
    target.write_bytes(disk(BROKEN))
    original = target.read_bytes()
    # Fixed by the model's answer, then by the search on the code as given (round 0).
    for args, asked in ((NO_SEARCH, 1), ([], 0)):
        run = fix(tmp_path, [str(target), "--yes", *args], [fence(FIXED)],
                  out=tmp_path / f"run-{asked}")
        assert run.code == 0, (run.stdout, run.stderr)
        assert target.read_bytes() == disk(FIXED)
        # The diff shows the one changed line, not every line of the file.
        changed = [" ".join(ln.split()) for ln in run.stdout.splitlines()
                   if ln.startswith(("+", "-")) and not ln.startswith(("+++", "---"))]
        assert changed == ["- return a - b", "+ return a + b"], run.stdout
        assert "calc.go: written with" in run.stdout
        assert len(run.requests) == asked
        for req in run.requests:
            prompt = req["messages"][-1]["content"]
            assert "\r" not in prompt and "\ufeff" not in prompt
        undo = fix(tmp_path, [str(target), "--undo"], [])
        assert undo.code == 0, undo.stderr
        assert target.read_bytes() == original


def test_dry_run_on_a_crlf_file_writes_nothing(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    target.write_bytes(b"\xef\xbb\xbf" + BROKEN.replace("\n", "\r\n").encode())
    before = tree(tmp_path / "m")
    run = fix(tmp_path, [str(target), "--dry-run"], [fence(FIXED)])
    assert run.code == 0 and "dry run" in run.stdout
    assert tree(tmp_path / "m") == before


# -- 4. read-only places -------------------------------------------------------------------

@pytest.mark.parametrize("what", ["folder", "file"])
def test_read_only_is_refused_before_any_round(tmp_path: Path, what: str) -> None:
    target = module(tmp_path / "m")
    ro = target.parent if what == "folder" else target
    mode = 0o555 if what == "folder" else 0o444
    os.chmod(ro, mode)
    try:
        before = tree(tmp_path / "m")
        run = fix(tmp_path, [str(target), "--yes"], [fence(FIXED)])
        one_line_error(run, 2, "read-only")
        assert run.requests == []  # no model round was spent on an answer it cannot write
        assert tree(tmp_path / "m") == before
        dry = fix(tmp_path, [str(target), "--dry-run"], [fence(FIXED)])
        assert dry.code == 0, dry.stderr  # only looking is fine
        assert tree(tmp_path / "m") == before
    finally:
        os.chmod(ro, 0o755 if what == "folder" else 0o644)


def _read_only_mount(path: Path) -> list[str] | None:
    """A prefix that runs a command with `path` mounted read-only, if this host allows it."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    probe = subprocess.run([unshare, "-m", "sh", "-c", f"mount --bind -o ro '{path}' "
                            f"'{path}' && ! touch '{path}/.probe' 2>/dev/null"],
                           capture_output=True)
    if probe.returncode != 0:
        return None
    # `cd` again after the mount: a working folder taken before it is still writable.
    return [unshare, "-m", "sh", "-c", f"mount --bind -o ro '{path}' '{path}' && "
            'cd "$PWD" && exec "$@"', "sh"]


def test_read_only_file_system_and_run_folder(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    prefix = _read_only_mount(tmp_path / "m")
    if prefix is None:
        pytest.skip("no mount namespaces here")
    before = tree(tmp_path / "m")
    run = fix(tmp_path, [str(target), "--yes"], [fence(FIXED)], prefix=prefix)
    one_line_error(run, 2, "read-only")
    # The current folder is read-only and the run log is asked for there.
    run = fix(tmp_path, [str(target), "--dry-run", "--out", "run"], [fence(FIXED)],
              prefix=prefix, cwd=tmp_path / "m")
    one_line_error(run, 2, "cannot write the run log")
    # Without --out the run log goes to the user cache: a read-only folder is fine to read.
    run = fix(tmp_path, [str(target), "--dry-run"], [fence(FIXED)], prefix=prefix,
              cwd=tmp_path / "m")
    assert run.code == 0, run.stderr
    assert tree(tmp_path / "m") == before


def test_backups_that_cannot_be_written_leave_the_file_alone(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    run = fix(tmp_path, [str(target), "--yes"], [fence(FIXED)],
              env={fixlib.BACKUPS_ENV: str(blocker / "backups")})
    one_line_error(run, 2, "cannot write", "nothing was changed")
    assert target.read_text() == BROKEN


# -- 6. FIFOs and devices ------------------------------------------------------------------

def test_a_fifo_in_the_package_is_skipped_and_naming_one_is_refused(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    fifo = target.parent / "pipe.go"
    os.mkfifo(fifo)
    (target.parent / "zero.go").symlink_to("/dev/zero")
    run = fix(tmp_path, [str(fifo), "--yes"], [fence(FIXED)], timeout=60)
    one_line_error(run, 2, "not a regular file")
    run = fix(tmp_path, [str(target.parent / "zero.go"), "--yes"], [fence(FIXED)], timeout=60)
    one_line_error(run, 2, "not a regular file")
    run = fix(tmp_path, [str(target), "--yes"], [fence(FIXED)], timeout=120)
    assert run.code == 0, (run.stdout, run.stderr)
    assert target.read_text() == FIXED
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_file_too_large_to_fix_is_refused_at_once(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    with target.open("r+b") as fh:  # sparse: 9 MiB that costs no disk
        fh.truncate(9 * 1024 * 1024)
    run = fix(tmp_path, [str(target), "--yes"], [fence(FIXED)], timeout=60)
    one_line_error(run, 2, "too large to fix")


# -- 7. only the apply step writes the user's tree -----------------------------------------

def test_only_apply_and_undo_may_write_the_users_tree(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    site = locate([target])
    with pytest.raises(RuntimeError, match="outside its apply step"):
        fixlib._write_user_file(target, FIXED, 0o644)
    with pytest.raises(RuntimeError, match="dry-run"):
        apply_changes(site.model_copy(update={"dry_run": True}), {"calc.go": FIXED})
    assert target.read_text() == BROKEN
    with FixSession(site, FixRequest()) as s:  # the session itself writes only its copy
        assert s.checker.check({"calc.go": FIXED}).passed
    assert target.read_text() == BROKEN


# -- 8. more odd input ---------------------------------------------------------------------

@pytest.mark.parametrize("name, message", [
    (".hidden.go", "Go ignores files"), ("_skip.go", "Go ignores files")])
def test_names_go_ignores_are_refused(tmp_path: Path, name: str, message: str) -> None:
    target = module(tmp_path / "m")
    odd = target.parent / name
    odd.write_text(BROKEN)
    run = fix(tmp_path, [str(odd), "--yes"], [fence(FIXED)])
    one_line_error(run, 2, message)


def test_a_package_in_a_dot_folder_is_refused(tmp_path: Path) -> None:
    m = tmp_path / "m"
    module(m)
    (m / ".tools").mkdir()
    (m / ".tools" / "t.go").write_text("package tools\n")
    run = fix(tmp_path, [str(m / ".tools" / "t.go"), "--yes"], [fence("package tools\n")])
    one_line_error(run, 2, "starts with '.'")


def test_an_answer_with_a_lone_surrogate_is_repaired_not_crashed(tmp_path: Path) -> None:
    # Every engine's answer passes through `Generation`, which replaces a lone surrogate
    # with U+FFFD: the user's file gets valid UTF-8, never a crash mid-write.
    target = module(tmp_path / "m")
    bad = fence(FIXED.replace("// Add returns", "// \ud800 Add returns"))
    run = fix(tmp_path, [str(target), "--yes", "--max-rounds", "2", *NO_SEARCH],
              [bad, fence(FIXED)])
    assert run.code == 0, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr
    assert target.read_bytes().decode("utf-8") == FIXED.replace(
        "// Add returns", "// \ufffd Add returns")


def test_stale_check_and_interrupt_survive_the_new_write_path(tmp_path: Path) -> None:
    target = module(tmp_path / "m")
    target.write_bytes(BROKEN.replace("\n", "\r\n").encode())
    site = locate([target])
    target.write_bytes(BROKEN.encode())  # same text, other line endings: still a change
    with pytest.raises(StaleFileError):
        apply_changes(site, {"calc.go": FIXED})
    with pytest.raises(FixError, match="no backup"):
        fixlib.undo(target)


# -- 5. Ctrl-C at the prompt ---------------------------------------------------------------

def test_ctrl_c_at_the_prompt_exits_130(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    target = module(tmp_path / "m")
    before = tree(tmp_path / "m")
    replay = tmp_path / "replay.yaml"
    replay.write_text(yaml.safe_dump({"responses": [fence(FIXED)]}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), fixlib.BACKUPS_ENV: str(tmp_path / "b"),
           "TERM": "xterm", "COLUMNS": "160"}
    child = pexpect.spawn(sys.executable, ["-m", "agent.cli", "fix", str(target), "--backend",
                                           "replay", "--replay", str(replay), "--out",
                                           str(tmp_path / "run")],
                          env=env, encoding="utf-8", timeout=300, dimensions=(50, 160),
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    child.expect(r"\[a\]pply / \[s\]how full file")
    child.sendintr()
    child.expect("interrupted")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert tree(tmp_path / "m") == before


def test_model_code_cannot_read_the_users_project_where_no_home_hides_it(tmp_path: Path) -> None:
    """The copy leaves `.env` out, but the original project must be out of reach too: a
    project outside /home, /root and /tmp used to be readable by absolute path."""
    from tools.isolation import Level, detect

    if detect().level is Level.limits:
        pytest.skip("no sandbox on this machine")
    base = Path("/var/lib")
    if not os.access(base, os.W_OK):
        pytest.skip("no writable folder outside the hidden ones")
    project = base / f"guild-proj-{uuid.uuid4().hex[:8]}"
    try:
        target = module(project)
        secret = f"SECRET-{uuid.uuid4().hex}"
        (project / ".env").write_text(f"TOKEN={secret}\n")
        (project / ".env").chmod(0o644)
        # The answer reads the original .env by its absolute path and panics with it, so
        # whatever it could read would reach the feedback and the trajectory.
        thief = FIXED.replace("package calc\n", f"""package calc

import "os"

func init() {{
	b, err := os.ReadFile({json.dumps(str(project / ".env"))})
	if err == nil {{
		panic("stolen: " + string(b))
	}}
}}
""", 1)
        run = fix(tmp_path, [str(target), "--yes", "--max-rounds", "1"], [fence(thief)])
        assert secret not in run.trajectory and secret not in run.stdout + run.stderr
        assert run.code == 0, (run.stdout, run.stderr)  # the honest part of it passed
    finally:
        shutil.rmtree(project, ignore_errors=True)
