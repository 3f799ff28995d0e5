"""The one pass check model code cannot forge.

A test binary is the model's code: it can print any test2json events, exit 0 from `init`,
declare or call `TestMain`, read every file in its workspace. So a pass is never read from
what the binary says. Each run gets a fresh secret that only trusted code can hand back:

- the secret is written to `tmp/guild-key`; a package with a random import path
  (`<module>/_guildv<random>`), imported only by the sentinel test file, reads it in its
  `init` and deletes it. Go initialises a package's imports before the package, and model
  code only ever lives in the package under test, so the key is gone before any model code
  runs; it is in no source file, argument, environment variable or build-cache entry;
- the sentinel (`zz_guild_<nonce>_test.go`, in the package under test) wraps `m.Run()`:
  only when it returns 0 *and* the `testing.M` really holds the expected tests (the same
  functions, compared by address, not just by name) does it ask that package to write the
  secret to `tmp/guild-verdict`;
- a task's or a user's own `TestMain` is kept: its `m.Run()` is routed through the sentinel.

Identifiers carry the nonce, so model code written before the run cannot name them.
What remains is code that reads its own process memory to find the key: see
docs/bad-inputs.md.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from tools.workspace import Workspace, write_nofollow

KEY_FILE = "guild-key"
VERDICT_FILE = "guild-verdict"
SENTINEL_PREFIX = "zz_guild_"
HELPER_PREFIX = "_guildv"

_PACKAGE_RE = re.compile(r"^\s*package\s+(\w+)", re.M)
_MODULE_RE = re.compile(r"^\s*module\s+\"?([^\s\"]+)\"?", re.M)
_TEST_MAIN_RE = re.compile(r"^func\s+TestMain\s*\(\s*(\w+)\s+\*\s*(\w+)\.M\s*\)", re.M)
_TEST_FUNC_RE = re.compile(r"^func\s+(Test\w*)\s*\(\s*\w+\s+\*\s*\w+\.T\s*\)", re.M)


def _strip_comments(src: str) -> str:
    src = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def _package(src: str) -> str | None:
    m = _PACKAGE_RE.search(_strip_comments(src))
    return m.group(1) if m else None


@dataclass
class Sentinel:
    """One run's sentinel: the files to add to the run's copy, and the secret to expect."""

    secret: str
    files: dict[str, str] = field(default_factory=dict)
    problem: str | None = None  # why no sentinel could be placed (then nothing passes)

    def is_sentinel_file(self, name: str | None) -> bool:
        return bool(name) and (PurePosixPath(name).name.startswith(SENTINEL_PREFIX)
                               or name.startswith(HELPER_PREFIX))

    def arm(self, ws: Workspace) -> None:
        """After `ws.prepare`: put the key where only the helper package's init reads it."""
        write_nofollow(ws.tmp, PurePosixPath(KEY_FILE), self.secret)

    def confirmed(self, ws: Workspace) -> bool:
        got = ws.read_output(VERDICT_FILE, limit=256)
        return self.problem is None and got is not None and got == self.secret.encode()


def plan_sentinel(ws: Workspace, pkg_dir: str, expected_tests: list[str]) -> Sentinel:
    """The sentinel for the package in `pkg_dir` (relative to the module root)."""
    nonce = secrets.token_hex(8)
    sentinel = Sentinel(secret=secrets.token_hex(32))
    # The helper package's path is fixed for the workspace's life, so the build cache
    # compiles it once; it holds no secret. A leading `_` keeps it out of `./...`.
    helper_dir = HELPER_PREFIX + ws.nonce
    go_mod = ws.read("go.mod")
    m = _MODULE_RE.search(_strip_comments(go_mod))
    if m is None:
        sentinel.problem = "go.mod names no module"
        return sentinel
    module = m.group(1)
    prefix = "" if pkg_dir in (".", "") else pkg_dir.rstrip("/") + "/"
    files = {n.removeprefix(prefix): c
             for n, c in ws.go_files(pkg_dir, recursive=False).items()}
    package = None
    for name, src in sorted(files.items(), key=lambda kv: kv[0].endswith("_test.go")):
        package = _package(src)
        if package:
            package = package.removesuffix("_test") if name.endswith("_test.go") else package
            break
    if package is None:
        sentinel.problem = "no Go package to test"
        return sentinel

    # Which package each test function lives in (the sentinel can only take the address
    # of tests in its own package), and whether a TestMain is already declared.
    test_pkg: dict[str, str] = {}
    own_main: tuple[str, str, str] | None = None  # file, its package, M parameter name
    for name, src in files.items():
        if not name.endswith("_test.go"):
            continue
        code = _strip_comments(src)
        file_pkg = _package(code) or package
        for t in _TEST_FUNC_RE.findall(code):
            test_pkg.setdefault(t, file_pkg)
        tm = _TEST_MAIN_RE.search(code)
        if tm:
            own_main = (name, file_pkg, tm.group(1))

    sentinel_pkg = own_main[1] if own_main else package
    run_fn, check_fn, helper = f"guildRun{nonce}", f"guildRanAll{nonce}", f"guildv{nonce}"
    key_path = json.dumps(str(ws.tmp / KEY_FILE))
    verdict_path = json.dumps(str(ws.tmp / VERDICT_FILE))
    sentinel.files[f"{helper_dir}/v.go"] = f"""package guildv

import guildos "os"

var key []byte

func init() {{
\tkey, _ = guildos.ReadFile({key_path})
\t_ = guildos.Remove({key_path})
}}

// Seal hands the key back: called only after the expected tests ran and passed.
func Seal() {{
\tif len(key) > 0 {{
\t\t_ = guildos.WriteFile({verdict_path}, key, 0o600)
\t}}
}}
"""
    want = []
    for t in expected_tests:
        addr = (f"guildreflect.ValueOf({t}).Pointer()" if test_pkg.get(t) == sentinel_pkg
                else "0")
        want.append(f"\t\t{json.dumps(t)}: {addr},")
    main_fn = "" if own_main else f"""
func TestMain(m *guildtesting.M) {{
\tguildos.Exit({run_fn}(m))
}}
"""
    sentinel.files[f"{prefix}{SENTINEL_PREFIX}{nonce}_test.go"] = f"""package {sentinel_pkg}

import (
\tguildos "os"
\tguildreflect "reflect"
\tguildtesting "testing"

\t{helper} {json.dumps(module + "/" + helper_dir)}
)

var _ = guildos.Exit

func {run_fn}(m *guildtesting.M) int {{
\tcode := m.Run()
\tif code == 0 && {check_fn}(m) {{
\t\t{helper}.Seal()
\t}}
\treturn code
}}

// {check_fn} is false when m is not the test binary's own M: a stand-in built by other
// code, holding other functions under the expected names.
func {check_fn}(m *guildtesting.M) bool {{
\twant := map[string]uintptr{{
{chr(10).join(want)}
\t}}
\ttests := guildreflect.ValueOf(m).Elem().FieldByName("tests")
\tif !tests.IsValid() || tests.Kind() != guildreflect.Slice {{
\t\treturn len(want) == 0
\t}}
\tfor i := 0; i < tests.Len(); i++ {{
\t\tt := tests.Index(i)
\t\tname := t.Field(0).String()
\t\taddr, ok := want[name]
\t\tif !ok {{
\t\t\tcontinue
\t\t}}
\t\tif addr != 0 && t.Field(1).Pointer() != addr {{
\t\t\treturn false
\t\t}}
\t\tdelete(want, name)
\t}}
\treturn len(want) == 0
}}
{main_fn}"""
    if own_main:
        # The task's own TestMain stays in charge; its m.Run() now goes through the sentinel.
        name, _, param = own_main
        src = files[name]
        start = _TEST_MAIN_RE.search(src)
        if start is None:  # declared only inside a comment-stripped view: leave it be
            sentinel.problem = "TestMain could not be located"
            return sentinel
        end = src.find("\nfunc ", start.end())
        end = len(src) if end < 0 else end
        body = re.sub(rf"\b{re.escape(param)}\s*\.\s*Run\s*\(\s*\)", f"{run_fn}({param})",
                      src[start.start():end])
        sentinel.files[prefix + name] = src[:start.start()] + body + src[end:]
    return sentinel
