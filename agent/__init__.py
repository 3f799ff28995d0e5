"""guild-agent: a local generate-compile-repair coding agent for Go."""

__version__ = "0.1.0"
