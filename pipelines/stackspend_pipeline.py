"""Load StackSpend into DuckDB with plain dlt: `python pipelines/stackspend_pipeline.py`.

Reads the key from .dlt/secrets.toml or SOURCES__STACKSPEND__API_KEY. The
`costsync sync stackspend` command does the same with progress, one load per
window and one-line errors.
"""

import dlt

from sources.stackspend import stackspend_source


def load_everything() -> None:
    """Line items, daily rollups and anomalies since the configured start_date."""
    pipeline = dlt.pipeline(
        pipeline_name="stackspend", destination="duckdb", dataset_name="stackspend"
    )
    print(pipeline.run(stackspend_source()))


def load_line_items_since(start_date: str) -> None:
    """Only the line items, from `start_date` (YYYY-MM-DD) on."""
    pipeline = dlt.pipeline(
        pipeline_name="stackspend", destination="duckdb", dataset_name="stackspend"
    )
    source = stackspend_source(start_date=start_date).with_resources("line_items")
    print(pipeline.run(source))


if __name__ == "__main__":
    load_everything()
