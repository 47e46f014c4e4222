"""Compact records of what a run saw, so a later run can tell what the API changed.

Amounts are recorded to a millionth of a dollar and compared within that
resolution: far below any real restatement, and above the noise an API that
adds its aggregates up in floating point leaves behind (0.30000000000000004
and 0.3 are the same amount here). Rows are recorded as a short digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal

RESOLUTION = Decimal("0.000001")

# Amounts per key (e.g. per provider) as recorded in dlt state: decimal strings.
RecordedSums = dict[str, str]


def rounded(value: Decimal | None) -> Decimal:
    """`value` to the recording resolution (None counts as 0)."""
    return (value or Decimal(0)).quantize(RESOLUTION, rounding=ROUND_HALF_EVEN)


def digest(rows: Iterable[Sequence[object]]) -> str:
    """A short digest of `rows`, whatever their order; Decimals are rounded first."""
    texts = sorted(json.dumps([_plain(v) for v in row]) for row in rows)
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


def record_sums(sums: Mapping[str, Decimal]) -> RecordedSums:
    """`sums` as recorded: rounded, zero amounts left out (a key with nothing is zero)."""
    return {key: f"{amount:f}" for key, value in sorted(sums.items()) if (amount := rounded(value))}


def sums_differ(recorded: Mapping[str, str], fresh: Mapping[str, str]) -> Decimal:
    """The largest difference between two recorded sums over their keys (0 when equal)."""
    keys = set(recorded) | set(fresh)
    return max(
        (abs(Decimal(recorded.get(k, "0")) - Decimal(fresh.get(k, "0"))) for k in keys),
        default=Decimal(0),
    )


def same_sums(recorded: Mapping[str, str], fresh: Mapping[str, str]) -> bool:
    """Whether two recorded sums agree within the recording resolution, key by key."""
    return sums_differ(recorded, fresh) <= RESOLUTION


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return f"{rounded(value):f}"
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)
