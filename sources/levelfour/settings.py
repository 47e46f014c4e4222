"""LevelFour endpoint, defaults and the spending_breakdown layout."""

from __future__ import annotations

import pyarrow as pa

from sources.shared.arrow_json import MONEY, TIMESTAMP
from sources.shared.replace import (
    DELETED_COLUMN,
    RESTATED_COLUMN,
    ROW_KEY_FIELD,
    keyed_columns,
)

VENDOR = "LevelFour"
KEY = "sources.levelfour"  # the config section
DEFAULT_BASE_URL = "https://api.levelfour.ai"
DEFAULT_REQUESTS_PER_MINUTE = 60
DEFAULT_START_MONTHS_AGO = 3
DEFAULT_REOPEN_MONTHS = 1
KEY_PREFIXES = ("l4_live_", "l4_test_")

BREAKDOWN_PATH = "/api/v1/spending/breakdown"
TABLE_PAGE_SIZE = 100  # the documented maximum for format=table
TABLE_SORTS = ("cost", "service", "region", "account_id")  # tried in turn if pages shift
MAX_PAGES = 10_000  # a guard against an answer that always says there is more

# The columns that identify one breakdown item within a period.
ITEM_KEY = (
    "provider_id",
    "account_id",
    "region",
    "service",
    "environment",
    "tag_key",
    "tag_value",
)

ITEM_WIRE = pa.struct(
    [
        ("service", pa.string()),
        ("provider_id", pa.string()),
        ("environment", pa.string()),
        ("region", pa.string()),
        ("account_id", pa.string()),
        ("tag_key", pa.string()),
        ("tag_value", pa.string()),
        ("cost", MONEY),
        ("previous_cost", MONEY),
        ("change_percentage", pa.float64()),
    ]
)
PAGINATION_WIRE = pa.struct(
    [
        ("total_items", pa.int64()),
        ("total_pages", pa.int64()),
        ("current_page", pa.int64()),
        ("page_size", pa.int64()),
        ("has_next", pa.bool_()),
        ("has_previous", pa.bool_()),
    ]
)
BREAKDOWN_WIRE = pa.schema(
    [
        (
            "data",
            pa.struct(
                [
                    ("period", pa.string()),
                    ("items", pa.list_(ITEM_WIRE)),
                    ("pagination", PAGINATION_WIRE),
                ]
            ),
        )
    ]
)

SPENDING_BREAKDOWN_SCHEMA = pa.schema(
    [
        pa.field("period", pa.string(), nullable=False),
        pa.field("provider_id", pa.string()),
        pa.field("account_id", pa.string()),
        pa.field("region", pa.string()),
        pa.field("service", pa.string()),
        pa.field("environment", pa.string()),
        pa.field("tag_key", pa.string()),
        pa.field("tag_value", pa.string()),
        pa.field("cost", MONEY),
        pa.field("previous_cost", MONEY),
        pa.field("change_percentage", pa.float64()),
        pa.field(DELETED_COLUMN, pa.bool_()),
        pa.field(RESTATED_COLUMN, TIMESTAMP),
    ]
)
# A breakdown row's natural key; every part but period may be null.
SPENDING_BREAKDOWN_KEY = ("period", *ITEM_KEY)
# The table as loaded: the API's fields and the row key (see sources.shared.replace).
SPENDING_BREAKDOWN_KEYED = SPENDING_BREAKDOWN_SCHEMA.append(ROW_KEY_FIELD)
SPENDING_BREAKDOWN_COLUMNS = keyed_columns(SPENDING_BREAKDOWN_KEYED, "period")
