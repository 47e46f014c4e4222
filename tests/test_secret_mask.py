"""SecretMask: a key echoed in any encoding a server can use is masked (property tests)."""

from __future__ import annotations

import base64
import json
import string
import urllib.parse

from hypothesis import given
from hypothesis import strategies as st

from sources.shared.secrets import MASK, SecretMask

# what a key can hold: printable ASCII without white space (others are refused)
KEYS = st.text(alphabet=string.printable.strip(), min_size=12, max_size=64)
AROUND = st.text(alphabet=string.ascii_letters + " :,.", max_size=20)


def percent(key: str, safe: str, lower: bool) -> str:
    quoted = urllib.parse.quote(key, safe=safe)
    return "".join(
        part.lower() if lower and part.startswith("%") else part for part in _percent_parts(quoted)
    )


def _percent_parts(text: str) -> list[str]:
    parts, i = [], 0
    while i < len(text):
        step = 3 if text[i] == "%" else 1
        parts.append(text[i : i + step])
        i += step
    return parts


@given(KEYS, AROUND, AROUND, st.sampled_from(["", "/", "/+=", string.punctuation]), st.booleans())
def test_a_percent_encoded_key_is_masked(
    key: str, before: str, after: str, safe: str, lower: bool
) -> None:
    masked = SecretMask([key])(before + percent(key, safe, lower) + after)
    assert MASK in masked and key not in urllib.parse.unquote(masked)


@given(KEYS, AROUND, AROUND, st.booleans(), st.sets(st.integers(0, 63)))
def test_a_json_or_unicode_escaped_key_is_masked(
    key: str, before: str, after: str, upper: bool, escaped: set[int]
) -> None:
    def escape(i: int, c: str) -> str:
        if i in escaped:
            code = f"{ord(c):04x}"
            return "\\u" + (code.upper() if upper else code)
        return json.dumps(c)[1:-1].replace("/", "\\/")

    body = json.dumps({"message": before + "KEY" + after}).replace(
        "KEY", "".join(escape(i, c) for i, c in enumerate(key))
    )
    masked = SecretMask([key])(body)
    assert MASK in masked and key not in json.loads(masked)["message"]


@given(KEYS, st.binary(max_size=5), st.binary(max_size=5), st.booleans())
def test_a_key_inside_base64_is_masked_at_any_alignment(
    key: str, before: bytes, after: bytes, urlsafe: bool
) -> None:
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    text = encode(before + key.encode() + after).decode()
    masked = SecretMask([key])(text)
    assert MASK in masked
    # what is left of the base64 text around the mask holds too few of the key's bits
    assert all(len(part) < len(key) * 4 // 3 - 2 for part in masked.split(MASK))


def test_text_without_the_key_is_left_as_it_is() -> None:
    mask = SecretMask(["ss_live_a1b2/c3d4+e5f6=SECRET"])
    text = 'plain %2F text \\u0073 "ss_live_" base64 c3NfbGl2ZV9h'
    assert mask(text) == text
    assert SecretMask([""])(text) == text
