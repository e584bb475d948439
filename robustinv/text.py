"""Text from user files made safe for where it is shown: a terminal, an XML document, one line.

Names of models, attacks and rules come from suites and policies. Control characters in them
would let a name move the cursor or recolour a terminal (ANSI escape sequences), and XML 1.0
cannot hold most of them at all (an ElementTree writer emits them verbatim and the document no
longer parses). Both helpers spell such characters as visible `\\xNN` / `\\uNNNN` escapes, so the
name stays recognisable and no two different names become the same text by accident.
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls; tab and line breaks are handled by the callers that allow them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Outside XML 1.0's Char production: C0 controls but tab/LF/CR, surrogates, U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """`text` without control characters: each becomes a visible escape (`\\x1b`)."""
    if keep_newlines:
        return "\n".join(_CONTROL.sub(_escape, line) for line in text.split("\n"))
    return _CONTROL.sub(_escape, text)


def xml_safe(text: str) -> str:
    """`text` with every character XML 1.0 cannot hold spelled as a visible escape."""
    return _NOT_XML.sub(_escape, text)


def first_line(exc: BaseException) -> str:
    """An exception's message as one short line (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
