import pyarrow as pa
import pytest

from pipelines.warehouse.connection import connect, ensure_raw_tables
from pipelines.warehouse.contracts import FEEDS, FLEET_TABLES, load_contract


@pytest.mark.parametrize("name", FEEDS + FLEET_TABLES)
def test_every_contract_loads_and_builds_its_table(name, tmp_path):
    contract = load_contract(name)
    assert contract.name == name and contract.version >= 1
    assert contract.required, "a contract without required columns checks nothing"
    assert all(c.description for c in contract.columns), "every column is documented"
    assert set(contract.key) <= set(contract.names)
    schema = contract.arrow_schema()
    assert isinstance(schema, pa.Schema) and schema.names == contract.names
    con = connect(tmp_path / "w.duckdb")
    ensure_raw_tables(con)
    cols = [r[0] for r in con.execute(f"DESCRIBE raw_{name}").fetchall()]
    assert cols[: len(contract.names)] == contract.names
    assert {"source_file", "source_line", "partition_date"} <= set(cols)


def test_timestamps_are_utc_microseconds_and_units_are_named():
    requests = load_contract("requests")
    assert requests.arrow_schema().field("started_at").type == pa.timestamp("us", tz="UTC")
    assert requests.column("prompt_tokens").min == 0
    telemetry = load_contract("telemetry")
    assert telemetry.column("power_w").unit == "W"
    assert telemetry.column("power_window_s").unit == "s"


def test_unknown_contract_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="no data contract"):
        load_contract("nope")


def test_a_warehouse_made_under_an_older_contract_gains_the_new_columns(tmp_path):
    from pipelines.warehouse.connection import connect, ensure_raw_tables

    con = connect(tmp_path / "old.duckdb")
    con.execute(
        "CREATE TABLE raw_telemetry (device_id VARCHAR, ts TIMESTAMPTZ, power_w DOUBLE, "
        "power_window_s DOUBLE, source_file VARCHAR, source_line BIGINT, partition_date DATE, "
        "loaded_at TIMESTAMPTZ)"
    )
    con.execute("INSERT INTO raw_telemetry (device_id, power_w) VALUES ('GPU-a', 100)")
    ensure_raw_tables(con)
    cols = {r[0] for r in con.execute("DESCRIBE raw_telemetry").fetchall()}
    assert {"energy_counter_j", "estimated_fields", "util_pct"} <= cols
    assert con.execute("SELECT device_id, power_w, estimated_fields FROM raw_telemetry").fetchall() == [
        ("GPU-a", 100.0, None)
    ]
