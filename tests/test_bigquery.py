"""BigQuery offline: partition and cluster hints, extract and normalize, the SQL it would run.

These tests stop at the network call (the client is built with a throwaway
service-account key); tests/test_bigquery_loads.py loads into a BigQuery
emulator end to end.
"""

from __future__ import annotations

from collections.abc import Iterator

import dlt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pipelines.assembly import prepare
from tests.conftest import Env


@pytest.fixture
def pipelines(env: Env) -> Iterator[dict[str, dlt.Pipeline]]:
    """BigQuery pipelines that have extracted and normalized each vendor from the sandbox."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    env.setenv(
        DESTINATION__BIGQUERY__CREDENTIALS__PROJECT_ID="costsync-test",
        DESTINATION__BIGQUERY__CREDENTIALS__CLIENT_EMAIL="loader@costsync-test.iam.gserviceaccount.com",
        DESTINATION__BIGQUERY__CREDENTIALS__PRIVATE_KEY=pem,
    )
    built = {}
    for name in ("stackspend", "levelfour"):
        prepared = prepare(name, "bigquery", pipelines_dir=str(env.pipelines_dir))
        prepared.pipeline.extract(prepared.source())
        prepared.pipeline.normalize()
        built[name] = prepared.pipeline
    yield built


TABLES = {
    "line_items": "stackspend",
    "daily_rollups": "stackspend",
    "anomalies": "stackspend",
    "spending_breakdown": "levelfour",
}


def columns(pipelines: dict[str, dlt.Pipeline], table: str) -> dict:
    return pipelines[TABLES[table]].default_schema.get_table(table)["columns"]


def test_partition_and_cluster_hints_land_in_the_schema(
    pipelines: dict[str, dlt.Pipeline],
) -> None:
    line_items = columns(pipelines, "line_items")
    assert line_items["usage_date"]["x-bigquery-partition"] is True
    assert line_items["provider_type"]["x-bigquery-cluster"] is True
    assert line_items["project_id"]["x-bigquery-cluster"] is True
    assert columns(pipelines, "daily_rollups")["date"]["x-bigquery-partition"] is True
    assert columns(pipelines, "anomalies")["detected_date"]["x-bigquery-partition"] is True
    breakdown = columns(pipelines, "spending_breakdown")
    assert breakdown["provider_id"]["x-bigquery-cluster"] is True


def test_extract_and_normalize_run_offline_into_parquet(
    pipelines: dict[str, dlt.Pipeline],
) -> None:
    for table, vendor in TABLES.items():
        pipeline = pipelines[vendor]
        (package,) = pipeline.list_normalized_load_packages()
        jobs = pipeline.get_load_package_info(package).jobs["new_jobs"]
        files = [job.file_path for job in jobs if job.job_file_info.table_name == table]
        assert files and all(f.endswith(".parquet") for f in files), table


def test_the_tables_bigquery_would_create(pipelines: dict[str, dlt.Pipeline]) -> None:
    def ddl(table: str) -> str:
        client = pipelines[TABLES[table]].destination_client()
        table_columns = list(columns(pipelines, table).values())
        return "\n".join(client._get_table_update_sql(table, table_columns, False))

    line_items = ddl("line_items")
    assert "`net_amount_usd` BIGNUMERIC(38,18)" in line_items
    assert "`usage_date` DATE  NOT NULL" in line_items
    assert "PARTITION BY `usage_date`" in line_items
    assert "CLUSTER BY `provider_type`, `project_id`" in line_items
    assert "PARTITION BY `date`" in ddl("daily_rollups")
    anomalies = ddl("anomalies")
    assert "PARTITION BY DATE(`detected_date`)" in anomalies
    assert "`detected_date` TIMESTAMP" in anomalies
    assert "CLUSTER BY `provider_id`" in ddl("spending_breakdown")


def test_bigquery_merges_keep_dlt_s_own_deduplication(
    pipelines: dict[str, dlt.Pipeline],
) -> None:
    # BigQuery names no stored row, so the row-id filter DuckDB and Postgres use does not apply
    for table, vendor in TABLES.items():
        schema = pipelines[vendor].default_schema.get_table(table)
        assert "x-stage-data-deduplicated" not in schema, table
        assert "x-merge-source-filter" not in schema, table
