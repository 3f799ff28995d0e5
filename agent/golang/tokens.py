"""A small, forgiving Go tokenizer: enough to find names, imports and statement ends.

Comments, strings and runes are skipped as whole tokens, so `"strings."` inside a
literal never counts as a use of package strings. It never fails: junk becomes `op`
tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, op
    text: str
    start: int
    end: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<string>"(?:[^"\\\n]|\\.)*"?|`[^`]*`?|'(?:[^'\\\n]|\\.)*'?)
  | (?P<number>\.?\d[\w]*(?:\.\w*)?(?:[eEpP][+-]?\d+)?)
  | (?P<ident>[^\W\d]\w*)
  | (?P<op>.)
    """,
    re.S | re.X,
)


def tokenize(src: str) -> list[Token]:
    """Go tokens without whitespace and comments. Never fails: junk becomes `op` tokens."""
    out: list[Token] = []
    for m in _TOKEN_RE.finditer(src):
        kind = m.lastgroup or "op"
        if kind in ("ws", "comment"):
            continue
        out.append(Token(kind, m.group(), m.start(), m.end()))
    return out
