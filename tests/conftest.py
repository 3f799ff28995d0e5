"""Shared test markers."""

from __future__ import annotations

import pytest

from tools.go import ToolchainError, find_toolchain

try:
    find_toolchain()
    HAVE_GO = True
except ToolchainError:
    HAVE_GO = False

needs_go = pytest.mark.skipif(not HAVE_GO, reason="no Go toolchain")
