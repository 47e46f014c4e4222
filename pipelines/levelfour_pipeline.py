"""Load LevelFour into DuckDB with dlt: `python pipelines/levelfour_pipeline.py`.

Reads the key from .dlt/secrets.toml or SOURCES__LEVELFOUR__API_KEY. The
`costsync sync levelfour` command does the same one month per load, with
progress and one-line errors.
"""

from pipelines.assembly import prepare


def load_breakdown() -> None:
    """The spending breakdown from the configured start_period to this month."""
    prepared = prepare("levelfour", "duckdb")
    with prepared.session() as destination:
        print(prepared.pipeline.run(prepared.source(), destination=destination))


if __name__ == "__main__":
    load_breakdown()
