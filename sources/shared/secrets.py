"""Masking credentials a server echoes back, in whatever encoding it echoes them.

A key can come back as sent, or with any of its characters escaped the ways
HTTP and JSON allow: percent-encoded (either case of hex, all characters or
only some, `+` for a space), JSON's `\\uXXXX` (either case) and `\\/`, or
inside a base64 text (alone or inside, say, `Bearer <key>` or `:<key>`, so at
any of base64's three alignments, in the standard and the URL-safe alphabet).
One pattern per credential matches every one of those forms.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

MASK = "***"


class SecretMask:
    """Replaces every echo of the given secrets in a text with `MASK`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = [form for secret in secrets if secret for form in _forms(secret)]
        # longest first, so a base64 text is masked whole before a shorter form inside it
        alternatives = sorted(set(forms), key=len, reverse=True)
        self._pattern = re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None

    def __call__(self, text: str) -> str:
        """`text` with every echo of a secret replaced by `MASK`."""
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def _forms(secret: str) -> list[str]:
    """The regular expressions matching `secret`: escaped character by character, and
    its base64 at each alignment."""
    return [
        "".join(_character(c) for c in secret),
        *(re.escape(text) for text in _base64_cores(secret.encode())),
    ]


def _character(c: str) -> str:
    """A character of a secret as sent, percent-encoded or JSON-escaped."""
    forms = {re.escape(c), "".join(f"%{byte:02x}" for byte in c.encode())}
    if ord(c) < 0x10000:
        forms.add(re.escape(f"\\u{ord(c):04x}"))
    if c in '/"\\':
        forms.add(re.escape("\\" + c))
    if c == " ":
        forms.add(r"\+")
    return "(?:" + "|".join(sorted(forms, key=len, reverse=True)) + ")"


def _base64_cores(raw: bytes) -> list[str]:
    """The base64 characters that stand for `raw` alone, whatever bytes surround it:
    for each of the three offsets `raw` can start at within a 3-byte group, the
    characters holding only its bits, in both alphabets."""
    cores = []
    for offset in range(3):
        text = base64.b64encode(bytes(offset) + raw).decode().rstrip("=")
        first = -(-offset * 8 // 6)  # the characters holding a bit before `raw`
        last = (offset + len(raw)) * 8 // 6  # those holding a bit after it excluded
        core = text[first:last]
        if len(core) >= 8:  # shorter would mask innocent text; such a key is refused anyway
            cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores
