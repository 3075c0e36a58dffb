"""Price files as markets publish them, through ingest and dbt's price models (int_prices_filled, int_prices_usd): overlapping files, missing hours
filled by the documented rule and flagged, and dated FX rates from the user's table."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.ingest.loader import ingest_feed, ingest_fleet_table
from tests.conftest import cli_env, dbt_build

DAY = date(2026, 11, 2)


def run_dbt(warehouse: Path, work: Path, *select: str) -> None:
    dbt_build(work, cli_env(warehouse=warehouse), *select)


@pytest.mark.slow
def test_missing_hours_are_filled_and_flagged_and_fx_is_dated(con, landing, tmp_path):
    hours = [f"2026-11-02 {h:02d}:00:00,{10 + h}" for h in range(24) if h in (2, 3, 4, 7, 8)]
    (landing / "prices" / "us-west_2026-11-02.csv").write_text("Datetime,Price (USD/MWh)\n" + "\n".join(hours) + "\n")
    # an overlapping later file: the first file (by name) keeps the hour, the repeat is quarantined
    (landing / "prices" / "us-west_2026-11-02_revised.csv").write_text(
        "Datetime,Price (USD/MWh)\n2026-11-02 02:00:00,999\n"
    )
    # EUR prices (Berlin local time) converted at the rate of their UTC day
    eu = [f"2026-11-0{d} {h:02d}:00:00,50" for d in (2, 3) for h in range(24)]
    (landing / "prices" / "eu-central_2026-11.csv").write_text("Datetime,Price (EUR/MWh)\n" + "\n".join(eu) + "\n")
    (landing / "fleet" / "fx_rates.csv").write_text(
        "currency,usd_per_unit,valid_from\nUSD,1.0,\nEUR,1.10,2026-11-01\nEUR,1.20,2026-11-02\n"
    )
    ingest_fleet_table(con, "fx_rates", landing)
    report = ingest_feed(con, "prices", landing, DAY)
    assert report.rows_quarantined == 1
    ingest_feed(con, "prices", landing, DAY - timedelta(days=1))  # 00:00 Berlin on Nov 2 is Nov 1 in UTC
    assert (
        con.execute("SELECT reason FROM ingest_quarantine")
        .fetchall()[0][0]
        .startswith("duplicate region/interval_start (first loaded from ")
    )
    warehouse = Path(
        con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()[0][0]
    )
    con.close()

    run_dbt(warehouse, tmp_path, "+int_prices_usd")

    import duckdb

    ro = duckdb.connect(str(warehouse), read_only=True)
    ro.execute("SET TimeZone = 'UTC'")
    west = {
        r[0]: r[1:]
        for r in ro.execute(
            "SELECT interval_start, price_usd_per_mwh, price_filled, price_filled_from FROM int_prices_usd "
            "WHERE region = 'us-west' ORDER BY 1"
        ).fetchall()
    }
    t = lambda h: datetime(2026, 11, 2, tzinfo=UTC) + timedelta(hours=h)  # noqa: E731
    # published 02-04 and 07-08; 00-01 come from 02 (nothing before), 05-06 from 04, 09-15 from 08 (within 6 h
    # of it); 16-23 are farther than 6 h from any price: unpriced, caveated in the marts, not guessed
    assert sorted(west) == [t(h) for h in range(16)]
    assert west[t(2)] == (12.0, False, None)
    assert west[t(0)] == (12.0, True, t(2)) and west[t(1)] == (12.0, True, t(2))
    assert west[t(5)] == (14.0, True, t(4)) and west[t(6)] == (14.0, True, t(4))
    assert west[t(15)] == (18.0, True, t(8))
    eu_rates = dict(
        ro.execute(
            "SELECT interval_start, price_usd_per_mwh FROM int_prices_usd WHERE region = 'eu-central' ORDER BY 1"
        ).fetchall()
    )
    assert eu_rates[datetime(2026, 11, 1, 23, tzinfo=UTC)] == 50 * 1.10  # 00:00 Berlin, Nov 1 in UTC
    assert eu_rates[datetime(2026, 11, 2, 0, tzinfo=UTC)] == 50 * 1.20
    ro.close()
