"""Text that came from a file, made safe to print.

Layer names, class names, blob names and paths inside a stranger's file reach the terminal
through messages and reports. A name holding an escape sequence (``"\\x1b[2J"``) or a newline
could redraw the screen or forge a second message line; a megabyte-long name could flood it.
`printable` keeps ordinary text as it is, writes every control or otherwise unprintable
character as a Python escape (``\\x1b``, ``\\n``, ``\\u202e``) and shortens what is longer than
`limit` characters, saying how much was left out.
"""
from __future__ import annotations

LIMIT = 200   # characters of one name shown; a genuine Caffe layer or class name is far below


def printable(text, limit: int = LIMIT) -> str:
    """`text` (any object: str() of it) with unprintable characters escaped, at most
    `limit` characters of it shown."""
    s = text if isinstance(text, str) else str(text)
    cut = len(s) - limit if len(s) > limit else 0
    if cut:
        s = s[:limit]
    out = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                  for c in s)
    return f"{out}... ({cut:,} more characters)" if cut else out
