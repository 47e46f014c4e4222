"""StackSpend endpoints, scopes, defaults and table layouts."""

from __future__ import annotations

import pyarrow as pa
from dlt.common.schema.typing import TWriteDispositionConfig

from sources.shared.arrow_json import MONEY, TIMESTAMP, dlt_columns
from sources.shared.replace import (
    DELETED_COLUMN,
    RESTATED_COLUMN,
    ROW_KEY_FIELD,
    keyed_columns,
)

VENDOR = "StackSpend"
KEY = "sources.stackspend"  # the config section
DEFAULT_BASE_URL = "https://api.stackspend.com"
DEFAULT_REQUESTS_PER_MINUTE = 60
DEFAULT_START_DAYS_AGO = 90
DEFAULT_LOOKBACK_DAYS = 3
DEFAULT_ANOMALY_LOOKBACK_DAYS = 30
DEFAULT_WINDOW_DAYS = 30

LINE_ITEMS_PATH = "/api/v1/public/line-items"
ROLLUPS_PATH = "/api/v1/public/rollups/daily"
ANOMALIES_PATH = "/api/v1/public/anomalies"

LINE_ITEMS_PAGE_LIMIT = 1000  # the documented maximum
ANOMALIES_PAGE_LIMIT = 500  # the documented maximum
ROLLUP_GROUP_BYS = ("provider", "service", "category")
ANOMALY_SEVERITIES = ("low", "medium", "high", "critical")
ANOMALY_STATUSES = ("new", "acknowledged", "resolved", "false_positive", "dismissed")

# which scope each resource needs (the docs' Scopes table)
RESOURCE_SCOPES = {
    "line_items": "line_items:read",
    "daily_rollups": "rollups:read",
    "anomalies": "anomalies:read",
}
ENDPOINT_RESOURCES = {
    LINE_ITEMS_PATH: "line_items",
    ROLLUPS_PATH: "daily_rollups",
    ANOMALIES_PATH: "anomalies",
}


# Wire types: what the JSON reader expects for each documented field.
LINE_ITEM_WIRE = pa.struct(
    [
        ("id", pa.string()),
        ("usage_date", pa.string()),
        ("provider_type", pa.string()),
        ("provider_service", pa.string()),
        ("net_amount_usd", MONEY),
        ("currency_original", pa.string()),
        ("project_id", pa.string()),
        ("user_email", pa.string()),
    ]
)
ROLLUP_WIRE = pa.struct(
    [
        ("date", pa.string()),
        ("cost_usd", MONEY),
        ("provider_type", pa.string()),
        ("service", pa.string()),
        ("category", pa.string()),
    ]
)
ANOMALY_WIRE = pa.struct(
    [
        ("id", pa.string()),
        ("provider_type", pa.string()),
        ("service", pa.string()),
        ("detected_date", TIMESTAMP),
        ("actual_cost", MONEY),
        ("expected_cost", MONEY),
        ("deviation_percent", pa.float64()),
        ("severity", pa.string()),
        ("alert_type", pa.string()),
        ("status", pa.string()),
    ]
)
PAGE_META_WIRE = pa.struct([("next_cursor", pa.string()), ("has_more", pa.bool_())])

# Table layouts: the Arrow schema each page is conformed to before dlt sees it.
LINE_ITEMS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("usage_date", pa.date32(), nullable=False),
        pa.field("provider_type", pa.string()),
        pa.field("provider_service", pa.string()),
        pa.field("net_amount_usd", MONEY),
        pa.field("currency_original", pa.string()),
        pa.field("project_id", pa.string()),
        pa.field("user_email", pa.string()),
        pa.field(DELETED_COLUMN, pa.bool_()),
        pa.field(RESTATED_COLUMN, TIMESTAMP),
    ]
)
DAILY_ROLLUPS_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("group_by", pa.string(), nullable=False),
        pa.field("provider_type", pa.string()),
        pa.field("service", pa.string()),
        pa.field("category", pa.string()),
        pa.field("cost_usd", MONEY),
        pa.field(DELETED_COLUMN, pa.bool_()),
    ]
)
# A rollup row's natural key; its parts other than date and group_by may be null.
DAILY_ROLLUPS_KEY = ("date", "group_by", "provider_type", "service", "category")
ANOMALIES_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("provider_type", pa.string()),
        pa.field("service", pa.string()),
        pa.field("detected_date", TIMESTAMP, nullable=False),
        pa.field("actual_cost", MONEY),
        pa.field("expected_cost", MONEY),
        pa.field("deviation_percent", pa.float64()),
        pa.field("severity", pa.string()),
        pa.field("alert_type", pa.string()),
        pa.field("status", pa.string()),
    ]
)


LINE_ITEMS_COLUMNS = dlt_columns(
    LINE_ITEMS_SCHEMA,
    id={"primary_key": True},
    **{DELETED_COLUMN: {"hard_delete": True}},
)
# The table as loaded: the API's fields and the row key (see sources.shared.replace).
DAILY_ROLLUPS_KEYED = DAILY_ROLLUPS_SCHEMA.append(ROW_KEY_FIELD)
DAILY_ROLLUPS_COLUMNS = keyed_columns(DAILY_ROLLUPS_KEYED, "date")
ANOMALIES_COLUMNS = dlt_columns(ANOMALIES_SCHEMA, id={"primary_key": True})


MERGE: TWriteDispositionConfig = {"disposition": "merge", "strategy": "delete-insert"}
# Re-read days are replaced whole, and a line item the API moved to a re-read day
# leaves its old day. dlt's default for a primary key plus a merge key is
# `EXISTS (... d.id = s.id OR d.usage_date = s.usage_date)`, which DuckDB and
# Postgres can only run as a nested loop; one IN over the ids to replace (the
# loaded ones, and every id on the re-read days) runs as a hash semi-join.
LINE_ITEMS_MERGE: TWriteDispositionConfig = {
    "disposition": "merge",
    "strategy": "delete-insert",
    "destination_scope": (
        "id IN (SELECT id FROM {staging_table} UNION ALL SELECT id FROM {table}"
        " WHERE usage_date IN (SELECT usage_date FROM {staging_table}))"
    ),
}
