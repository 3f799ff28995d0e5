"""Render the prompt templates in `prompts/`: the one place prompts are built."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jinja2


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,  # a missing variable is a bug, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def _load(name: str) -> str:
    return resources.files("prompts").joinpath(name).read_text()


def render(template: str, **values: Any) -> str:
    """Render `prompts/<template>.j2`."""
    return _env().get_template(f"{template}.j2").render(**values).strip() + "\n"
