"""Per-round toolchain cost: what one repair-loop round pays the Go side, warm and cold.

    python benchmarks/perf/toolchain_round.py [--rounds 15] [--skip-cold] [--guard-overhead]

A round is what the loop does after each model answer: write the solution, run
`GoRunner.check` (one `go test -json`: compile, vet, test). Rounds alternate a passing
and a failing solution, so neither the test result cache (-count=1 disables it anyway)
nor an unchanged package can make a round look cheaper than it is. The cold run points
GUILD_AGENT_CACHE at an empty directory to show what warm_cache() saves a first task.
Not a test: timings depend on the machine; the target is a warm median <= 0.4 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run from a checkout

from tools.go import find_toolchain
from tools.guard import OFF_ENV, guard_binary
from tools.paths import cache_dir
from tools.runner import GoRunner
from tools.warm import warm_cache
from tools.workspace import Workspace

TESTS = """\
package sandbox

import "testing"

func TestClamp(t *testing.T) {
	cases := []struct{ v, lo, hi, want int }{{5, 0, 10, 5}, {-1, 0, 10, 0}, {11, 0, 10, 10}}
	for _, c := range cases {
		if got := Clamp(c.v, c.lo, c.hi); got != c.want {
			t.Errorf("Clamp(%d, %d, %d) = %d, want %d", c.v, c.lo, c.hi, got, c.want)
		}
	}
}
"""
PASSING = """\
package sandbox

import "fmt"

// Clamp limits v to [lo, hi].
func Clamp(v, lo, hi int) int {
	_ = fmt.Sprint(v) // a real import, as model code usually has
	return max(lo, min(v, hi))
}
"""
FAILING = PASSING.replace("max(lo, min(v, hi))", "min(v, hi)")
TARGET = 0.4


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def rounds(n: int) -> list[float]:
    """Wall time of n alternating rounds in one workspace, as the loop reuses one."""
    runner = GoRunner()
    times: list[float] = []
    with Workspace() as ws:
        ws.write("clamp_test.go", TESTS)
        for i in range(n):
            passing = i % 2 == 0
            start = time.monotonic()
            ws.write("clamp.go", PASSING if passing else FAILING)
            result = runner.check(ws, expected_tests=["TestClamp"])
            times.append(time.monotonic() - start)
            if result.passed != passing:  # a broken setup would time the wrong thing
                raise SystemExit(f"round {i}: expected passed={passing}, got "
                                 f"{result.diagnostics or result.log[-800:]}")
    return times


def first_call(cache: Path | None) -> float:
    """One round in a fresh workspace; with `cache`, against that (empty) cache dir."""
    saved = os.environ.get("GUILD_AGENT_CACHE")
    if cache is not None:
        os.environ["GUILD_AGENT_CACHE"] = str(cache)
    try:
        return rounds(1)[0]
    finally:
        if saved is None:
            os.environ.pop("GUILD_AGENT_CACHE", None)
        else:
            os.environ["GUILD_AGENT_CACHE"] = saved


def guard_overhead(n: int) -> None:
    """Rounds with and without the Landlock exec guard, interleaved in blocks of three so
    load changes hit both alike; prints both medians and their ratio."""
    if guard_binary() is None:
        print("guard overhead: no exec guard on this machine (nothing to compare)")
        return
    on: list[float] = []
    off: list[float] = []
    for block in range(max(1, n // 3)):
        for guarded in ((True, False) if block % 2 == 0 else (False, True)):
            if guarded:
                os.environ.pop(OFF_ENV, None)
            else:
                os.environ[OFF_ENV] = "off"
            (on if guarded else off).extend(rounds(3))
    os.environ.pop(OFF_ENV, None)
    m_on, m_off = statistics.median(on), statistics.median(off)
    print(f"guard overhead: median {m_on:.3f}s guarded vs {m_off:.3f}s unguarded over "
          f"{len(on)}+{len(off)} rounds: ratio {m_on / m_off:.3f} "
          f"({(m_on - m_off) * 1000:+.0f} ms a round)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--skip-cold", action="store_true", help="skip the cold-cache run")
    ap.add_argument("--guard-overhead", action="store_true",
                    help="also time rounds with the Landlock exec guard off vs on")
    args = ap.parse_args()

    tc = find_toolchain()
    print(f"go {tc.version} at {tc.go}; cache {cache_dir()}; {os.cpu_count()} CPUs; "
          f"load {os.getloadavg()[0]:.1f}; isolation "
          f"{os.environ.get('GUILD_AGENT_ISOLATION', 'auto')}")
    warmed = warm_cache()
    print("warm-up: " + ("already warm" if warmed is None else f"{warmed:.2f}s"))

    times = rounds(args.rounds)
    median, p90 = statistics.median(times), percentile(times, 0.9)
    print(f"warm rounds: n={len(times)} median={median:.3f}s p90={p90:.3f}s "
          f"min={min(times):.3f}s max={max(times):.3f}s "
          f"[target median <= {TARGET}s: {'met' if median <= TARGET else 'MISSED'}]")

    if args.guard_overhead:
        guard_overhead(args.rounds)
    if not args.skip_cold:
        warm_first = first_call(None)
        tmp = Path(tempfile.mkdtemp(prefix="guild-cold-cache-"))
        try:
            cold_first = first_call(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"first call: cold cache {cold_first:.2f}s, warm cache {warm_first:.2f}s "
              f"(warm_cache() saves a first task {cold_first - warm_first:.1f}s)")
    return 0 if median <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
