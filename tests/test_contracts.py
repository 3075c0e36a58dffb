import pyarrow as pa
import pytest

from pipelines.lib.contracts import FEEDS, FLEET_TABLES, load_contract
from pipelines.lib.warehouse import connect, ensure_raw_tables


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
