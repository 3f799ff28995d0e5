"""Warm the shared GOCACHE once, so the first real task doesn't pay a cold compile.

A cold `go test` of a package importing fmt, strings, testing … compiles those packages,
vets them and builds test2json: 12–20 s on a small machine. Every later run reuses the
build cache. `warm_cache()` pays that cost once, up front, with a throwaway package that
imports what Go tasks commonly use, and leaves a stamp so later calls cost a stat().
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from tools.go import ToolchainError, find_toolchain
from tools.locks import file_lock
from tools.paths import cache_dir
from tools.runner import CheckOptions, GoRunner
from tools.workspace import Workspace

# What task solutions and their tests import most; each is referenced below so the
# compiler cannot drop it, and vet analyses it once.
COMMON_IMPORTS: dict[str, str] = {
    "bufio": "bufio.NewReader",
    "bytes": "bytes.NewBuffer",
    "container/heap": "heap.Init",
    "container/list": "list.New",
    "context": "context.Background",
    "encoding/json": "json.Marshal",
    "errors": "errors.New",
    "fmt": "fmt.Sprintf",
    "io": "io.ReadAll",
    "maps": "maps.Keys[map[int]int]",
    "math": "math.Sqrt",
    "math/big": "big.NewInt",
    "math/bits": "bits.OnesCount",
    "math/rand": "rand.Intn",
    "os": "os.Getenv",
    "reflect": "reflect.DeepEqual",
    "regexp": "regexp.MustCompile",
    "slices": "slices.Sort[[]int]",
    "sort": "sort.Ints",
    "strconv": "strconv.Itoa",
    "strings": "strings.Fields",
    "sync": "new(sync.Mutex).Lock",
    "sync/atomic": "new(atomic.Int64).Load",
    "time": "time.Now",
    "unicode": "unicode.IsLetter",
    "unicode/utf8": "utf8.RuneCountInString",
}

NO_WARM_ENV = "GUILD_AGENT_NO_WARM"


def _sources() -> dict[str, str]:
    imports = "\n".join(f'\t"{path}"' for path in COMMON_IMPORTS)
    refs = "\n".join(f"\t{ref}," for ref in COMMON_IMPORTS.values())
    main = f"package warm\n\nimport (\n{imports}\n)\n\nvar refs = []any{{\n{refs}\n}}\n"
    # The test file is shaped like a task's: testing plus the usual helpers, one test.
    test = (
        "package warm\n\n"
        'import (\n\t"fmt"\n\t"reflect"\n\t"strings"\n\t"testing"\n)\n\n'
        "func TestWarm(t *testing.T) {\n"
        "\tif len(refs) == 0 || !reflect.DeepEqual(strings.Fields(\"a b\"), "
        "[]string{\"a\", \"b\"}) {\n"
        '\t\tt.Errorf("unexpected: %s", fmt.Sprint(len(refs)))\n'
        "\t}\n"
        '\tt.Run("sub", func(t *testing.T) {})\n'
        "}\n"
    )
    return {"warm.go": main, "warm_test.go": test}


def stamp_path() -> Path:
    """The stamp for this toolchain and this import set; a new Go or new imports re-warm."""
    tc = find_toolchain()
    digest = hashlib.sha256("\n".join(sorted(COMMON_IMPORTS)).encode()).hexdigest()[:10]
    return cache_dir() / "warm" / f"{tc.version}-{digest}.stamp"


def is_warm() -> bool:
    # The stamp alone can lie after `go clean -cache` or a deleted cache dir.
    return stamp_path().is_file() and (cache_dir() / "go-build").is_dir()


def warm_cache(force: bool = False) -> float | None:
    """Compile and test a package importing the common standard library, once.

    Returns the seconds spent, or None when the cache was already warm (also when
    another process warmed it while this one waited for the lock). `force` warms again
    regardless of the stamp. Raises ToolchainError when the toolchain cannot build even
    this trivial package: nothing else would work either.
    """
    if not force and is_warm():
        return None
    stamp = stamp_path()
    with file_lock(stamp.parent / ".lock"):
        if not force and is_warm():
            return None
        start = time.monotonic()
        # The same call path as a real task (go test -json, vet, test2json): every
        # artefact a task needs beyond its own package ends up in the cache.
        with Workspace(module="warm", prefix="guild-warm-") as ws:
            for name, content in _sources().items():
                ws.write(name, content)
            result = GoRunner(CheckOptions(test_timeout=60.0, build_allowance=600.0)).check(
                ws, expected_tests=["TestWarm"])
        if not result.passed:
            first = result.diagnostics[0] if result.diagnostics else None
            raise ToolchainError(f"warming the Go build cache failed: {first or result.log[-500:]}")
        seconds = time.monotonic() - start
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(f"{seconds:.2f}\n")
        tmp.replace(stamp)  # atomic: a reader sees no stamp or a whole one
        return seconds


def warm_unless_disabled(enabled: bool = True) -> float | None:
    """For drivers with a `--no-warm` flag: warm unless told not to (flag or env).

    GUILD_AGENT_NO_WARM=1 disables it too. Never raises: a failed warm-up only costs
    time, and the real check reports the same toolchain problem with its own context.
    """
    if not enabled or os.environ.get(NO_WARM_ENV, "").strip() not in ("", "0"):
        return None
    try:
        return warm_cache()
    except (ToolchainError, OSError):
        return None
