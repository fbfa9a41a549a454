"""Control characters from the API never reach a CSV cell or an HTML page, and never vanish.

A NUL or an escape sequence in a server description is invisible in a spreadsheet or browser,
may truncate the value in some readers, and can hide text from a reviewer. They are replaced by
their visible Unicode control pictures (NUL shows as ``␀``, ESC as ``␛``), C1 controls and
unpaired surrogates (which UTF-8 cannot even encode) by ``�``. Tab, line feed and carriage
return are ordinary layout and stay. ``audit.json`` keeps the exact value (JSON escapes it).
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_KEPT = {"\t", "\n", "\r"}
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20) if chr(code) not in _KEPT}
_PICTURES[0x7F] = "\u2421"
_PICTURES.update({code: REPLACEMENT for code in range(0x80, 0xA0)})
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Any character :func:`visible_text` replaces (a quick scan: most text has none).
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def visible_text(text: str) -> str:
    """``text`` with every control character (but tab/CR/LF) replaced by a visible stand-in."""
    if _UNSAFE.search(text) is None:  # str.translate is slow on non-ASCII text: skip it if clean
        return text
    return _SURROGATE.sub(REPLACEMENT, text.translate(_PICTURES))
