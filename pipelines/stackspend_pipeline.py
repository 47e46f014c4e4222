"""Load StackSpend into DuckDB with dlt: `python pipelines/stackspend_pipeline.py`.

Reads the key from .dlt/secrets.toml or SOURCES__STACKSPEND__API_KEY. The
`costsync sync stackspend` command does the same one window per load, with
progress and one-line errors.
"""

from pipelines.assembly import prepare


def load_everything() -> None:
    """Line items, daily rollups and anomalies since the configured start_date."""
    prepared = prepare("stackspend", "duckdb")
    with prepared.session() as destination:
        print(prepared.pipeline.run(prepared.source(), destination=destination))


if __name__ == "__main__":
    load_everything()
