"""The benchmark's exact SQL formulation and the kernel agree on the same inputs (the speed comparison is fair)."""

import numpy as np
import pytest

from pipelines.devtools.bench import run_floor, run_kernel, run_sql, synthetic_inputs


def test_kernel_and_sql_agree_on_a_small_fleet():
    requests, telemetry = synthetic_inputs(5_000, 4, 3_000, seed=3)
    k = run_kernel(requests, telemetry).sort_by("request_id")
    s = run_sql(requests, telemetry).sort_by("request_id")
    assert k["request_id"].to_pylist() == s["request_id"].to_pylist()
    np.testing.assert_allclose(k["energy_j"].to_numpy(), s["energy_j"].to_numpy(), rtol=1e-9, atol=1e-9)
    assert run_floor(requests, telemetry)["n"][0].as_py() == requests.num_rows + telemetry.num_rows


@pytest.mark.parametrize(
    ("n_requests", "devices", "horizon_s", "seed"),
    [(5_000, 4, 3_000, 3), (6_000, 3, 3 * 3600 + 600, 5)],
    ids=["within-an-hour", "across-three-hourly-buckets"],
)
def test_the_kernel_matches_exact_arithmetic_where_it_and_the_sql_differ_most(n_requests, devices, horizon_s, seed):
    # the bench's agreement figure, on a small fleet: the kernel's energy of the requests where it and the SQL differ
    # most is within 1e-12 of exact rational arithmetic, also for requests split between hourly price buckets
    from pipelines.devtools.bench import exact_energy_j

    requests, telemetry = synthetic_inputs(n_requests, devices, horizon_s, seed=seed)
    k = run_kernel(requests, telemetry).sort_by("request_id")
    s = run_sql(requests, telemetry).sort_by("request_id")
    kv, sv = k["energy_j"].to_numpy(), s["energy_j"].to_numpy()
    ids = k["request_id"].to_pylist()
    for j in np.argsort(np.abs(kv - sv) / np.maximum(np.abs(sv), 1e-12))[-5:]:
        exact = exact_energy_j(requests, telemetry, ids[j])
        assert abs(kv[j] - exact) <= 1e-12 * exact, (ids[j], kv[j], exact)
