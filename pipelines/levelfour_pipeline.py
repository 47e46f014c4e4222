"""Load LevelFour into DuckDB with plain dlt: `python pipelines/levelfour_pipeline.py`.

Reads the key from .dlt/secrets.toml or SOURCES__LEVELFOUR__API_KEY. The
`costsync sync levelfour` command does the same with progress, one load per
month and one-line errors.
"""

import dlt

from sources.levelfour import levelfour_source


def load_breakdown() -> None:
    """The spending breakdown from the configured start_period to this month."""
    pipeline = dlt.pipeline(
        pipeline_name="levelfour", destination="duckdb", dataset_name="levelfour"
    )
    print(pipeline.run(levelfour_source()))


def load_one_year(start_period: str) -> None:
    """Twelve months from `start_period` (YYYY-MM)."""
    pipeline = dlt.pipeline(
        pipeline_name="levelfour", destination="duckdb", dataset_name="levelfour"
    )
    year, month = map(int, start_period.split("-"))
    end = f"{year + (month + 10) // 12}-{(month + 10) % 12 + 1:02d}"
    print(pipeline.run(levelfour_source(start_period=start_period, end_period=end)))


if __name__ == "__main__":
    load_breakdown()
