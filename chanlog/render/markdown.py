"""Markdown escaping: every value from a transcript is written so that it stays the text it is.

Where a value goes decides how it is escaped (CommonMark 0.31, GitHub Flavored Markdown tables):

- a block of code (a frame, a URL): a fence longer than any run of backticks inside (:func:`fence`);
- inline code (a parameter, a method name): a backtick string longer than any run inside, control characters
  shown as ``\\n``-style escapes, ``|`` escaped inside table cells (:func:`code`);
- running text (a title, a reason): control characters shown escaped, and a backslash before every character
  that could start markup: HTML (``<``, ``&``), links (``[``, ``]``), code (`````), tables (``|``), and block
  markers at the start (:func:`text`);
- a quote: :func:`chanlog.sources.nodelog.escape_note` on every line.

So a value can neither end the block it is in, nor open HTML, a link or a heading.
"""

from __future__ import annotations

import re

from chanlog.sources.nodelog import escape_note, fence

__all__ = ["code", "fence", "quote", "text", "visible"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
#: Markup characters, except an empty list ``[]`` (not followed by ``(``), which starts nothing.
_MARKUP = re.compile(r"\[\](?!\()|[\\`<>&\[\]|]")
_BLOCK_START = re.compile(r"^(\s*)([#>+=~*_-]|\d+[.)])")
#: Anything :func:`text` changes (most values have none: they are returned as they are).
_ANY = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\\`<>&\[\]|]|^\s*(?:[#>+=~*_-]|\d+[.)])")
_BACKTICKS = re.compile(r"`+")


def visible(value: object) -> str:
    """``str(value)`` with control characters (line breaks included) shown as escapes: ``\\n``, ``\\r``,
    ``\\t``, ``\\x1b``, ``\\u2028``."""
    return _CONTROL.sub(lambda m: _NAMED.get(m[0]) or (f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100
                                                        else f"\\u{ord(m[0]):04x}"), str(value))


def text(value: object) -> str:
    """Running Markdown text showing ``value`` as is: control characters escaped (:func:`visible`), a
    backslash before ``\\ ` < > & [ ] |``, and before a block marker (``#``, ``>``, ``-``, ``1.``) that starts
    the text."""
    if _ANY.search(value if type(value) is str else str(value)) is None:
        return str(value)
    escaped = _MARKUP.sub(lambda m: m[0] if m[0] == "[]" else "\\" + m[0], visible(value))
    return _BLOCK_START.sub(lambda m: m[1] + "\\" + m[2] if not m[2][0].isdigit() else
                            m[1] + m[2][:-1] + "\\" + m[2][-1], escaped)


def code(value: object, table: bool = False) -> str:
    """``value`` as an inline code span: delimited by more backticks than any run inside (padded with a
    space when it starts or ends with a backtick), control characters escaped; ``table=True`` also escapes
    ``|`` (GFM ends a cell at a bare ``|``, even inside code)."""
    shown = visible(value)
    if table:
        shown = shown.replace("|", "\\|")
    longest = max((len(m) for m in _BACKTICKS.findall(shown)), default=0)
    ticks = "`" * (longest + 1)
    if not shown:
        return "` `"
    pad = " " if shown.startswith("`") or shown.endswith("`") or not shown.strip(" ") else ""
    return f"{ticks}{pad}{shown}{pad}{ticks}"


def quote(value: object) -> str:
    """A Markdown quote: ``> `` before every line of ``value``, each line escaped by
    :func:`~chanlog.sources.nodelog.escape_note` (the node layout's own escaping, which its importer undoes)."""
    return "\n".join(f"> {escape_note(line)}" for line in str(value).split("\n"))
