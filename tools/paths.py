"""Where guild-agent keeps things: one neutral module both `agent/` and `tools/` use.

The cache (GOCACHE, model weights, warm-up stamps, the exec guard) can be deleted at any
time; the data folder holds runs and their index.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_dir() -> Path:
    """The user cache directory shared by every run (GOCACHE, models, warm-up stamps)."""
    override = os.environ.get("GUILD_AGENT_CACHE")
    if override:
        return Path(override).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "guild-agent"


def data_dir() -> Path:
    """Where runs and their index live unless `--out` says otherwise."""
    override = os.environ.get("GUILD_AGENT_DATA")
    if override:
        return Path(override).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "guild-agent"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "guild-agent"
