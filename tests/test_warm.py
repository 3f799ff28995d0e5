"""warm_cache: once per Go version, free afterwards, one warm-up under concurrent callers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tools import warm
from tools.go import ToolchainError, find_toolchain
from tools.paths import cache_dir


@pytest.fixture
def fresh_stamps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache dir (no stamps) whose go-build is the real, already-warm one.

    The stamp logic runs for real, but the compile hits the shared cache, so these
    tests cost a second, not a 15 s cold build.
    """
    try:
        find_toolchain()
    except ToolchainError as exc:
        pytest.skip(f"no Go toolchain: {exc}")
    real = cache_dir() / "go-build"
    real.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("GUILD_AGENT_CACHE", str(tmp_path))
    (tmp_path / "go-build").symlink_to(real, target_is_directory=True)
    return tmp_path


def test_first_call_warms_and_stamps_later_calls_are_free(fresh_stamps: Path) -> None:
    assert not warm.is_warm()
    seconds = warm.warm_cache()
    assert isinstance(seconds, float) and seconds > 0
    stamp = warm.stamp_path()
    assert stamp.is_file() and stamp.is_relative_to(fresh_stamps)
    assert find_toolchain().version in stamp.name  # a new Go version warms again
    assert warm.warm_cache() is None
    assert isinstance(warm.warm_cache(force=True), float)


def test_stamp_without_build_cache_warms_again(fresh_stamps: Path) -> None:
    warm.warm_cache()
    link = fresh_stamps / "go-build"
    real = link.readlink()
    link.unlink()  # as after `rm -r ~/.cache/guild-agent/go-build`
    assert warm.stamp_path().is_file()
    # Not warm, so the next warm_cache() compiles again (not run here: a cold build).
    assert not warm.is_warm()
    link.symlink_to(real, target_is_directory=True)
    assert warm.is_warm()


def test_concurrent_callers_warm_once(fresh_stamps: Path) -> None:
    results: list[float | None] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            results.append(warm.warm_cache())
        except BaseException as exc:  # surfaced below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(results) == 3
    # flock is per open file, so threads contend like processes: one does the work.
    assert sum(r is not None for r in results) == 1, results


def test_disabled_by_flag_or_env(fresh_stamps: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert warm.warm_unless_disabled(enabled=False) is None
    monkeypatch.setenv(warm.NO_WARM_ENV, "1")
    assert warm.warm_unless_disabled() is None
    assert not warm.is_warm()  # neither call did anything
    monkeypatch.delenv(warm.NO_WARM_ENV)
    assert isinstance(warm.warm_unless_disabled(), float)
    assert warm.is_warm()


def test_warm_package_covers_common_imports() -> None:
    main = warm._sources()["warm.go"]
    for pkg in ("fmt", "strings", "strconv", "sort", "slices", "maps", "math", "unicode",
                "bytes", "errors", "bufio", "io", "os", "regexp", "time", "sync", "context",
                "container/heap", "encoding/json"):
        assert f'"{pkg}"' in main
