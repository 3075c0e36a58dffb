"""Real market price files read in place: green-dcc (UTC, local naive with DST, explicit offsets, spikes, negative
prices) and epftoolbox day-ahead files (a "Real price" column among forecasts)."""

from datetime import date

import pytest

from pipelines.ingest.loader import ingest_files, ingest_fleet_table
from pipelines.warehouse.connection import connect
from pipelines.warehouse.contracts import FLEET_TABLES
from tests.conftest import REPO

REGIONS = """region,market,price_timezone,interval_minutes
US-CAL-CISO,CAISO-DAM-NP15,UTC,60
US-TEX-ERCO,ERCOT-DAM-HB_HUBAVG,America/Chicago,60
DE-LU,RTE-DA-DE-LU,Europe/Berlin,60
Forecasts,EPEX-DA-DE,Europe/Berlin,60
"""


@pytest.fixture
def con(tmp_path):
    fleet = tmp_path / "landing" / "fleet"
    fleet.mkdir(parents=True)
    for name in FLEET_TABLES:
        src = REPO / "sample_logs" / "fleet" / f"{name}.csv"
        if src.exists():
            (fleet / f"{name}.csv").write_text(src.read_text())
    (fleet / "regions.csv").write_text(REGIONS)
    c = connect(tmp_path / "w.duckdb")
    for name in FLEET_TABLES:
        ingest_fleet_table(c, name, tmp_path / "landing")
    yield c
    c.close()


def prices(con, region):
    return con.execute(
        "SELECT interval_start, price_per_mwh FROM raw_prices WHERE region = ? ORDER BY 1", [region]
    ).fetchall()


def test_caiso_utc_hours(realdata, con):
    f = realdata / "green-dcc-prices" / "US-CAL-CISO_electricity_prices_2023.csv"
    report = ingest_files(con, "prices", [f], date(2023, 6, 1))
    got = prices(con, "US-CAL-CISO")
    assert report.rows_quarantined == 0 and len(got) == 24
    assert [t.hour for t, _ in got] == list(range(24))


def test_ercot_offsets_across_the_fall_dst_change_and_a_scarcity_spike(realdata, con):
    f = realdata / "green-dcc-prices" / "US-TEX-ERCO_electricity_prices_2023.csv"
    ingest_files(con, "prices", [f], date(2023, 11, 5))
    got = prices(con, "US-TEX-ERCO")
    # local 01:00 twice (-05:00 then -06:00) are two different UTC hours: all 24 UTC hours are priced once
    assert [t.hour for t, _ in got] == list(range(24))
    # the 4191.66 USD/MWh scarcity hour (2023-08-25 19:00 CDT = 2023-08-26 00:00 UTC) loads as it is
    ingest_files(con, "prices", [f], date(2023, 8, 26))
    spike = con.execute(
        "SELECT price_per_mwh FROM raw_prices WHERE region = 'US-TEX-ERCO' "
        "AND interval_start = TIMESTAMPTZ '2023-08-26 00:00:00+00'"
    ).fetchall()
    assert spike == [(4191.66,)]


def test_de_lu_naive_local_time_on_the_spring_dst_day(realdata, con):
    f = realdata / "green-dcc-prices" / "DE-LU_electricity_prices_2023.csv"
    report = ingest_files(con, "prices", [f], date(2023, 3, 26))
    got = prices(con, "DE-LU")
    # local 02:00 does not exist that day: it maps onto 03:00's UTC hour, the first row wins, the other is
    # quarantined as a duplicate; nothing is lost, every UTC hour 00..21 is priced
    reasons = [r for (r,) in con.execute("SELECT reason FROM ingest_quarantine WHERE feed = 'prices'").fetchall()]
    assert report.rows_read == report.rows_loaded + report.rows_quarantined
    assert any(r.startswith("duplicate region/interval_start") for r in reasons)
    assert len({t for t, _ in got}) == len(got)


def test_negative_prices_load(realdata, con):
    f = realdata / "green-dcc-prices" / "DE-LU_electricity_prices_2023.csv"
    ingest_files(con, "prices", [f], date(2023, 1, 1))
    assert min(p for _, p in prices(con, "DE-LU")) < 0


def test_epftoolbox_real_price_column(realdata, con):
    f = realdata / "epftoolbox-dayahead" / "Forecasts_DE_DNN_LEAR_ensembles.csv"
    report = ingest_files(
        con, "prices", [f], date(2016, 1, 4), options={"value_column": "Real price", "currency": "EUR"}
    )
    got = prices(con, "Forecasts")
    assert report.rows_loaded == len(got) >= 23
    assert got[0][1] != 0 and con.execute("SELECT DISTINCT currency FROM raw_prices").fetchall() == [("EUR",)]
