"""`guild-agent doctor`: what this machine gives the agent (sandbox, Go, engines, models)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from agent.cli import EXIT_OK, EXIT_UNAVAILABLE, main, out
from tools.go import ToolchainError, find_toolchain
from tools.guard import guard_binary, guard_status
from tools.isolation import Level, detect
from tools.paths import cache_dir


def _isolation() -> dict[str, Any]:
    iso = detect()
    try:
        guard = guard_binary() is not None
        guard_note = guard_status()
    except ToolchainError as exc:
        guard, guard_note = False, str(exc)
    # Without a uid switch (user namespace, or no sandbox) model code runs as the caller.
    return {"level": iso.level.value,
            "runs_as_uid": iso.run_as[0] if iso.run_as else os.geteuid(),
            "process_cap": "pids cgroup" if iso.pids_cgroup else "rlimits only",
            "write_guard": guard, "write_guard_note": guard_note,
            "notes": list(iso.notes)}


def _go() -> dict[str, Any]:
    try:
        tc = find_toolchain()
    except ToolchainError as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "path": str(tc.go), "version": tc.version, "goroot": str(tc.goroot)}


def _gocache() -> dict[str, Any]:
    path = cache_dir() / "go-build"
    warm: bool | None = None
    try:  # the warm-up stamp needs a toolchain; without one "unknown" is the honest answer
        from tools.warm import is_warm

        warm = is_warm()
    except (ImportError, ToolchainError):
        warm = None
    return {"path": str(path), "exists": path.is_dir(), "warm": warm}


def _engines() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in ("mlx", "xllamacpp"):
        try:
            mod = importlib.import_module(name)
        except Exception as exc:  # an engine that fails to import for any reason is absent
            found[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
            continue
        found[name] = {"ok": True, "version": getattr(mod, "__version__", None)}
    return found


def _models() -> list[dict[str, Any]]:
    root = cache_dir() / "models"
    rows: list[dict[str, Any]] = []
    seen: set[Path] = set()
    catalog: dict[str, Any] = {}
    try:  # the catalog names the files we know; fall back to listing the directory
        from agent.models.catalog import CATALOG
        from agent.models.weights import gguf_path, mlx_dir

        catalog = dict(CATALOG)
    except ImportError:
        pass
    for name, entry in catalog.items():
        gguf, mlx = gguf_path(entry.gguf), mlx_dir(entry)
        seen.update((gguf, mlx))
        rows.append({"name": name, "gguf": gguf.is_file(), "mlx": mlx.is_dir(),
                     "path": str(gguf if gguf.is_file() else mlx if mlx.is_dir() else "")})
    if root.is_dir():
        for p in sorted(root.glob("*.gguf")):
            if p not in seen:
                rows.append({"name": p.stem, "gguf": True, "mlx": False, "path": str(p)})
    return rows


def report() -> dict[str, Any]:
    return {"isolation": _isolation(), "go": _go(), "gocache": _gocache(),
            "engines": _engines(), "models": _models(), "cache_dir": str(cache_dir())}


def _mark(ok: bool | None) -> str:
    return {True: "[green]yes[/]", False: "[red]no[/]", None: "[yellow]unknown[/]"}[ok]


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def doctor(as_json: bool) -> None:
    """Report the sandbox level, the Go toolchain, GOCACHE, engines and models."""
    r = report()
    if as_json:
        click.echo(json.dumps(r))
    else:
        iso = r["isolation"]
        color = "green" if iso["level"] == Level.bubblewrap.value else "yellow"
        out.print(f"sandbox     [{color}]{iso['level']}[/] (process cap: {iso['process_cap']}; "
                  f"model code runs as uid {iso['runs_as_uid']})")
        for note in iso["notes"]:
            out.print(f"            note: {note}", highlight=False)
        out.print(f"write guard {_mark(iso['write_guard'])} {iso['write_guard_note']}",
                  highlight=False)
        go = r["go"]
        if go["ok"]:
            out.print(f"go          {go['version']} at {go['path']}", highlight=False)
        else:
            out.print(f"go          [red]missing[/]: {go['error']}", highlight=False)
        gc = r["gocache"]
        out.print(f"GOCACHE     {gc['path']} (exists: {_mark(gc['exists'])}, "
                  f"warm: {_mark(gc['warm'])})", highlight=False)
        for name, e in r["engines"].items():
            detail = e.get("version") or "" if e["ok"] else e["error"]
            out.print(f"engine      {name}: {_mark(e['ok'])} {detail}", highlight=False)
        for m in r["models"]:
            have = [k for k in ("gguf", "mlx") if m[k]]
            state = "[green]present[/] (" + ", ".join(have) + ")" if have else "not downloaded"
            out.print(f"model       {m['name']}: {state}", highlight=False)
    sys.exit(EXIT_OK if r["go"]["ok"] else EXIT_UNAVAILABLE)
