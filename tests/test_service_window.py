"""The sample day with two devices outside their service window: one used before its inventory in_service_from
(a data error: its requests carry a caveat and a flag, every rollup counts them, and the attribution quality check
devices_in_service names the device and the day), one whose amortization ended (paid off: capex 0 is right, and
its caveat says so)."""

import duckdb
import pytest

from tests.conftest import run_cli, sample_landing

DAY = "2026-11-02"
# single-device replicas on us-west-h100-small-001, in USD
EARLY = "GPU-7f6c8da4-4135-41b5-a575-f21de76186b1"  # in_service_from moved after the day
PAID_OFF = "GPU-4fa391a9-59a2-47db-be96-3f01aba6bcb7"  # in service from 2020-06-01 for 4 years: paid off 2024-06-01
IN_SERVICE_FROM = "2026-12-01"


def _moved(line: str) -> str:
    if line.startswith(EARLY):
        assert ",2025-01-01,4," in line
        return line.replace(",2025-01-01,4,", f",{IN_SERVICE_FROM},4,")
    if line.startswith(PAID_OFF):
        assert ",2025-01-01,4," in line
        return line.replace(",2025-01-01,4,", ",2020-06-01,4,")
    return line


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    root = tmp_path_factory.mktemp("service_window")
    landing = sample_landing(root, edit_inventory=lambda lines: [_moved(x) for x in lines])
    run_cli(["materialize", "--partition", DAY], home=root / "home", landing=landing, timeout=900)
    con = duckdb.connect(str(root / "home" / "warehouse.duckdb"), read_only=True)
    yield con
    con.close()


def one(con, sql, params=None):
    return con.execute(sql, params or []).fetchall()[0]


def on_device(con, device):
    (n,) = one(con, "SELECT count(DISTINCT request_id) FROM request_energy_pieces WHERE device_id = ?", [device])
    assert n > 100, device
    return n


def test_requests_before_in_service_carry_the_caveat_and_the_flag(warehouse):
    n = on_device(warehouse, EARLY)
    flagged, caveated, capex = one(
        warehouse,
        f"""
        SELECT count(*) FILTER (WHERE device_before_in_service),
               count(*) FILTER (WHERE cost_caveat = 'device used before in_service_from {IN_SERVICE_FROM}: no capex, '
                                                    || 'cost is partial'),
               sum(capex_cost_usd) FILTER (WHERE device_before_in_service) FROM fct_request_cost""",
    )
    assert flagged == caveated == n
    assert capex == 0  # what made the fleet look cheaper per token, now said
    # the device's requests are left out of the technique comparisons, counted
    (excluded,) = one(warehouse, "SELECT sum(requests_excluded) FROM technique_savings")
    assert excluded >= n


def test_a_paid_off_device_costs_no_capex_and_says_so(warehouse):
    n = on_device(warehouse, PAID_OFF)
    flagged, caveated, capex, other = one(
        warehouse,
        """
        SELECT count(*) FILTER (WHERE amortization_ended),
               count(*) FILTER (WHERE cost_caveat = 'amortization ended 2024-06-01: no capex'),
               sum(capex_cost_usd) FILTER (WHERE amortization_ended),
               sum(capex_cost_usd) FILTER (WHERE NOT amortization_ended AND NOT device_before_in_service)
        FROM fct_request_cost""",
    )
    assert flagged == caveated == n and capex == 0 and other > 0
    assert one(
        warehouse, "SELECT count(*) FROM fct_request_cost WHERE amortization_ended AND device_before_in_service"
    ) == (0,)


def test_every_rollup_counts_them(warehouse):
    early, paid_off = one(
        warehouse,
        "SELECT count(*) FILTER (WHERE device_before_in_service), "
        "count(*) FILTER (WHERE amortization_ended) FROM fct_request_cost",
    )
    for rollup in ("agg_daily_model_cost", "agg_daily_technique_cost", "agg_daily_device_type_cost"):
        got = one(
            warehouse,
            f"SELECT sum(requests_before_in_service), sum(requests_amortization_ended), "
            f"sum(requests_with_caveat) FROM {rollup}",
        )
        assert got[:2] == (early, paid_off) and got[2] >= early + paid_off, rollup


def test_the_quality_check_names_the_device_and_the_day(warehouse):
    rows = warehouse.execute(
        "SELECT success, unexpected_sample FROM quality_check_results "
        "WHERE check_name = 'devices_in_service' AND partition_date = ?",
        [DAY],
    ).fetchall()
    assert len(rows) == 1
    success, message = rows[0]
    print(message)
    assert not success
    assert f"device_id={EARLY}" in message and f"day={DAY}" in message
    assert f"in_service_from={IN_SERVICE_FROM}" in message and "1 of " in message
    assert PAID_OFF not in message  # paid off is not an error
