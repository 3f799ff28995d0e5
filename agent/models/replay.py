"""Scripted responses from a file, in order: for tests and demos of the loop's logic.

The file is YAML or JSON with a `responses:` list of strings (a bare list works too).
Running out is an error, not a silent repeat, so a test that expected fewer rounds fails
loudly.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from agent.models.base import Generation, Message, ModelError, ModelUnavailable, Sampling

if TYPE_CHECKING:
    pass

MAX_REPLAY_BYTES = 64 << 20  # far above any script; a device or a runaway file is refused


def load_responses(path: str | Path) -> list[str]:
    """The scripted responses in `path`. Raises ModelUnavailable with one clear line."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ModelUnavailable(f"{p}: the replay file is not a regular file")
        if st.st_size > MAX_REPLAY_BYTES:
            raise ModelUnavailable(f"{p}: the replay file is larger than "
                                   f"{MAX_REPLAY_BYTES >> 20} MB")
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelUnavailable(f"{p}: no such replay file (--replay FILE)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelUnavailable(f"{p}: cannot read replay file: {exc}") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, RecursionError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelUnavailable(f"{p}: not valid YAML/JSON: {first}") from None
    responses = data.get("responses") if isinstance(data, dict) else data
    if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
        raise ModelUnavailable(f"{p}: expected `responses:` with a list of strings")
    return responses


class ReplayModel:
    """Returns the scripted responses one per call, across all conversations."""

    backend = "replay"

    def __init__(self, responses: list[str], *, name: str = "replay",
                 source: str | None = None) -> None:
        self.name = name
        self.responses = list(responses)
        self.source = source or "the replay script"
        self.calls = 0

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayModel:
        return cls(load_responses(path), name=f"replay:{Path(path).name}", source=str(path))

    def generate(self, messages: list[Message], sampling: Sampling) -> Generation:
        if self.calls >= len(self.responses):
            raise ModelError(
                f"{self.source} ran out of responses: call {self.calls + 1} but only "
                f"{len(self.responses)} scripted; add more under `responses:`")
        text = self.responses[self.calls]
        self.calls += 1
        return Generation(text=text, prompt_tokens=sum(len(m.content) for m in messages) // 4,
                          completion_tokens=max(1, len(text) // 4), finish_reason="stop")
