"""How the sandboxes write amounts: the same values in the notations JSON allows.

JSON lets a server write 12.48 as `12.48`, `1.248e1`, `1248E-2`, `12.4800`
or `0.1248e+2`. A sandbox set to the "exponent" or "mixed" notation rewrites
every money value of its JSON answers that way; the values stay the same, so
its ground truth does too. `override_amount` serves a literal text instead of
the next amounts, e.g. `1e30`, to see what a client does with an amount it
cannot hold (the ground truth does not follow an override).
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.common import as_int, as_str
from sandbox.http import Response

NOTATIONS: tuple[str, ...] = ("plain", "exponent", "mixed")


def exponent_text(text: str) -> str:
    """A plain JSON number in scientific notation, same value: 12.48 -> 1.248e1, 0.05 -> 5e-2."""
    sign, significand, places = _parts(text)
    if significand == "0":
        return f"{sign}0e0"
    digits = significand.rstrip("0")
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{len(significand) - 1 - places}"


def notation_variants(text: str) -> list[str]:
    """A plain JSON number in each notation "mixed" uses, all the same value.

    12.48: 12.48, 1.248e1, 1.248E+1, 1248e-2, 12480E-3, 0.1248e2, 12.48000.
    """
    sign, significand, places = _parts(text)
    zeros = text + ("000" if "." in text else ".000")
    if significand == "0":
        return [text, "-0", "0e0", "-0.0", "0.000E+3", "0e-5", zeros]
    digits = significand.rstrip("0")
    leading = len(significand) - 1 - places  # the power of ten of the first digit
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return [
        text,
        f"{sign}{mantissa}e{leading}",
        f"{sign}{mantissa}E{'+' if leading >= 0 else ''}{leading}",
        f"{sign}{significand}e-{places}",
        f"{sign}{significand}0E-{places + 1}",
        f"{sign}0.{digits}e{leading + 1}",
        zeros,
    ]


def mixed_text(text: str) -> str:
    """One of `text`'s variants, picked by its digits (the same text always gets the same)."""
    variants = notation_variants(text)
    return variants[zlib.crc32(text.encode()) % len(variants)]


def _parts(text: str) -> tuple[str, str, int]:
    """(sign, significand, decimal places) of a plain JSON number: -12.480 -> ("-", "12480", 3)."""
    sign, number = ("-", text[1:]) if text.startswith("-") else ("", text)
    whole, _, fraction = number.partition(".")
    return sign, (whole + fraction).lstrip("0") or "0", len(fraction)


@dataclass
class _Override:
    text: str
    field: str | None
    remaining: int | None  # None: until cleared


class AmountWriter:
    """Rewrites the money values of JSON bodies in a notation, or as an override's text."""

    def __init__(self, fields: Iterable[str], notation: str = "plain") -> None:
        self.fields = tuple(fields)
        names = "|".join(re.escape(name) for name in self.fields)
        self._pattern = re.compile(rf'"({names})":(-?[0-9]+(?:\.[0-9]+)?)(?=[,}}\]])'.encode())
        self._lock = threading.Lock()
        self._override: _Override | None = None
        self.notation = notation

    @property
    def notation(self) -> str:
        """ "plain" (as rendered), "exponent" or "mixed"."""
        return self._notation

    @notation.setter
    def notation(self, notation: str) -> None:
        if notation not in NOTATIONS:
            raise ValueError(f"amount notation must be one of {', '.join(NOTATIONS)}")
        self._notation = notation

    def override(
        self, text: str | None, field: str | None = None, count: int | None = None
    ) -> None:
        """Write the next `count` amounts (in `field`, or in any money field) as `text`.

        `count` None: every one until `override(None)` clears it.
        """
        if field is not None and field not in self.fields:
            raise ValueError(f"field must be one of {', '.join(self.fields)}")
        if count is not None and count < 1:
            raise ValueError("count must be >= 1, or null for every amount")
        with self._lock:
            self._override = None if text is None else _Override(text, field, count)

    def rewrite(self, body: bytes) -> bytes:
        """`body` with its money values in the notation (and the override applied)."""
        with self._lock:
            if self._notation == "plain" and self._override is None:
                return body
            return self._pattern.sub(self._replace, body)

    def describe(self) -> dict[str, Any]:
        """The current settings, for the admin endpoints."""
        with self._lock:
            override = self._override
        return {
            "notation": self._notation,
            "override": None
            if override is None
            else {"text": override.text, "field": override.field, "count": override.remaining},
        }

    def _replace(self, match: re.Match[bytes]) -> bytes:
        field, value = match.group(1).decode(), match.group(2).decode()
        override = self._override
        if override is not None and override.field in (None, field):
            if override.remaining is not None:
                override.remaining -= 1
                if override.remaining == 0:
                    self._override = None
            return f'"{field}":{override.text}'.encode()
        return f'"{field}":{_WRITERS[self._notation](value)}'.encode()


_WRITERS: dict[str, Callable[[str], str]] = {
    "plain": lambda text: text,
    "exponent": exponent_text,
    "mixed": mixed_text,
}


class AmountControls:
    """The amount knobs of a sandbox with an `AmountWriter` in `self._amounts`."""

    _amounts: AmountWriter

    @property
    def amount_notation(self) -> str:
        """How money values are written: "plain", "exponent" or "mixed"."""
        return self._amounts.notation

    @amount_notation.setter
    def amount_notation(self, notation: str) -> None:
        self._amounts.notation = notation

    def override_amount(
        self, text: str | None, field: str | None = None, count: int | None = None
    ) -> None:
        """Serve the next `count` amounts (in `field`, or any money field) as the literal `text`.

        `count` None: every amount until `override_amount(None)`.
        """
        self._amounts.override(text, field, count)

    def write_amounts(self, response: Response) -> Response:
        """`response` with its money values written in the notation (JSON answers only)."""
        if response.status == 200 and response.content_type == "application/json":
            response.body = self._amounts.rewrite(response.body)
        return response

    def _admin_amount_notation(self, body: dict[str, Any]) -> dict[str, Any]:
        self.amount_notation = as_str(body.get("notation"), "notation")
        return self._amounts.describe()

    def _admin_amount_override(self, body: dict[str, Any]) -> dict[str, Any]:
        if "text" not in body:
            raise ValueError("text is required (the literal to serve, or null to clear)")
        text = None if body["text"] is None else as_str(body["text"], "text")
        field = None if body.get("field") is None else as_str(body["field"], "field")
        count = None if body.get("count") is None else as_int(body["count"], "count")
        self.override_amount(text, field, count)
        return self._amounts.describe()
