"""Prefill and decode: a request with ``first_token_at`` shares power as two phases.

Prefill [started_at, first_token_at) is compute-bound and weighs ``prompt_token_weight x prompt tokens`` over the
prefill time; decode [first_token_at, ended_at) is memory-bound and weighs the output tokens over the decode time.
A request without first_token_at (or with it outside (started_at, ended_at)) keeps today's rule: one piece of
weight ``output + prompt_token_weight x prompt`` over its whole interval. The two weights add up to today's weight,
so a request alone on its device gets the same energy either way; they only move energy between concurrent
requests that are in different phases.

Exactly, and without touching the sweep: each such request becomes two pseudo-requests (named by their row), the
kernel runs as ever, and the pieces are summed back per request, device and bucket, keeping the prefill and
decode parts apart (``prefill_energy_j``, ``decode_energy_j``; both null for a request without a phase split).

Pure numpy/pyarrow; imports no Dagster.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.attribution.arrays import ts_us
from pipelines.attribution.kernel import attribute_energy, request_weights
from pipelines.attribution.prepare import plain_request_ids
from pipelines.attribution.results import AttributionResult
from pipelines.settings import DEFAULT_PROMPT_TOKEN_WEIGHT

WHOLE, PREFILL, DECODE = 0, 1, 2


def _tokens(requests: pa.Table, name: str) -> np.ndarray:
    if name not in requests.column_names:
        return np.zeros(requests.num_rows)
    return np.nan_to_num(pc.cast(requests[name], pa.float64()).to_numpy(zero_copy_only=False))


def split_phases(requests: pa.Table, prompt_token_weight: float = DEFAULT_PROMPT_TOKEN_WEIGHT) -> pa.Table:
    """The kernel's input rows: request_id (the row number), source_row, phase (WHOLE, PREFILL, DECODE),
    device_id, started_at, ended_at, weight. Requests with a first_token_at strictly inside their interval give a
    prefill and a decode row, the others one whole row."""
    start = ts_us(requests["started_at"])
    end = ts_us(requests["ended_at"])
    prompt, output = _tokens(requests, "prompt_tokens"), _tokens(requests, "completion_tokens")
    if "first_token_at" in requests.column_names:
        first_col = requests["first_token_at"]
        has_first = ~pc.is_null(first_col).to_numpy(zero_copy_only=False)
        first = np.where(has_first, ts_us(pc.fill_null(first_col, pa.scalar(0, pa.int64()).cast(first_col.type))), 0)
    else:
        has_first, first = np.zeros(len(start), bool), np.zeros(len(start), np.int64)
    split = has_first & (first > start) & (first < end)
    # rows in order, each once (WHOLE) or twice (PREFILL then DECODE): built in that order, no sort
    counts = 1 + split.astype(np.int64)
    rows = np.repeat(np.arange(len(start)), counts)
    phase = np.zeros(len(rows), np.int8)
    at = (np.cumsum(counts) - counts)[split]
    phase[at], phase[at + 1] = PREFILL, DECODE
    whole_weight = request_weights(output, prompt, prompt_token_weight)
    weight = np.where(
        phase == WHOLE,
        whole_weight[rows],
        np.where(phase == PREFILL, prompt_token_weight * prompt[rows], output[rows]),
    )
    s = np.where(phase == DECODE, first[rows], start[rows])
    e = np.where(phase == PREFILL, first[rows], end[rows])
    ts_type = requests["started_at"].type
    return pa.table(
        {
            "request_id": pa.array(np.arange(len(rows)), pa.int64()),  # the kernel reads it as text
            "source_row": pa.array(rows, pa.int64()),
            "phase": pa.array(phase, pa.int8()),
            "device_id": pc.take(requests["device_id"], pa.array(rows)),
            "started_at": pa.array(s, pa.int64()).cast(ts_type),
            "ended_at": pa.array(e, pa.int64()).cast(ts_type),
            "weight": pa.array(weight, pa.float64()),
        }
    )


KEYS = ["request_id", "device_id", "bucket_start"]


def _sum_back(pieces: pa.Table, pseudo: pa.Table, request_ids: pa.Array) -> pa.Table:
    """Pseudo-request pieces summed per (request row, bucket), which is per (request, device, bucket): every
    measure the kernel gives (energy_j, device_share_s, unmetered_s and any it adds), with the prefill and decode
    parts of energy_j apart. In the order of the request rows, then buckets."""
    idx = pc.cast(pieces["request_id"], pa.int64()).to_numpy(zero_copy_only=False)
    src = pseudo["source_row"].to_numpy()[idx]
    phase = pseudo["phase"].to_numpy()[idx]
    bucket = pc.cast(pieces["bucket_start"], pa.int64()).to_numpy(zero_copy_only=False)
    order = np.lexsort((bucket, src))
    src, bucket, phase = src[order], bucket[order], phase[order]
    first = np.flatnonzero(np.concatenate(([True], (src[1:] != src[:-1]) | (bucket[1:] != bucket[:-1]))))
    energy = pieces["energy_j"].to_numpy()[order]
    measures = [c for c in pieces.column_names if c not in KEYS]

    def summed(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, first) if len(values) else values

    split = summed((phase != WHOLE).astype(np.int64)) > 0
    out = {
        "request_id": pc.take(request_ids, pa.array(src[first])),
        "device_id": pc.take(pieces["device_id"], pa.array(order[first])),
        "bucket_start": pa.array(bucket[first], pa.int64()).cast(pieces["bucket_start"].type),
        **{c: summed(pieces[c].to_numpy()[order]) for c in measures},
    }
    for name, part in (("prefill_energy_j", PREFILL), ("decode_energy_j", DECODE)):
        out[name] = pa.array(summed(np.where(phase == part, energy, 0.0)), pa.float64(), mask=~split)
    return pa.table(out)


def _per_request(pieces: pa.Table, requests: pa.Table) -> pa.Table:
    """request_id, the pieces' measures summed (energy_j, prefill_energy_j, decode_energy_j, device_share_s,
    unmetered_s, ...) and device_s."""
    sums = [c for c in pieces.column_names if c not in KEYS]
    g = pieces.group_by("request_id", use_threads=False).aggregate([(c, "sum") for c in sums])
    g = g.rename_columns({f"{c}_sum": c for c in sums})
    micros = pc.subtract(pc.cast(requests["ended_at"], pa.int64()), pc.cast(requests["started_at"], pa.int64()))
    length = pa.table(
        {
            "request_id": requests["request_id"],
            "device_s": pc.divide(pc.cast(micros, pa.float64()), 1e6),
        }
    )
    length = length.group_by("request_id", use_threads=False).aggregate([("device_s", "sum")])
    length = length.rename_columns({"device_s_sum": "device_s"})
    return g.join(length, "request_id", join_type="full outer").select(["request_id", *sums, "device_s"])


def attribute_energy_by_phase(
    requests: pa.Table,
    telemetry: pa.Table,
    *,
    prompt_token_weight: float = DEFAULT_PROMPT_TOKEN_WEIGHT,
    **kernel_options,
) -> AttributionResult:
    """attribute_energy with the prefill/decode rule; per_request_bucket (one row per request, device and bucket,
    as ever) adds prefill_energy_j and decode_energy_j. requests: request_id, device_id, started_at, ended_at,
    completion_tokens, prompt_tokens and optionally first_token_at. Other options go to the kernel."""
    # the ids as the kernel reads them, also for the sums by id here (a dictionary's indices are not the requests)
    rid = plain_request_ids(requests["request_id"])
    requests = requests.set_column(requests.column_names.index("request_id"), "request_id", rid)
    pseudo = split_phases(requests, prompt_token_weight)
    if not pc.any(pc.not_equal(pseudo["phase"], WHOLE)).as_py():  # no phases: the kernel's rows as they are
        plain = requests.drop_columns([c for c in ("first_token_at",) if c in requests.column_names])
        result = attribute_energy(plain, telemetry, prompt_token_weight=prompt_token_weight, **kernel_options)
        none = pa.nulls(result.per_request_bucket.num_rows, pa.float64())
        pieces = result.per_request_bucket.append_column("prefill_energy_j", none).append_column(
            "decode_energy_j", none
        )
    else:
        result = attribute_energy(pseudo, telemetry, **kernel_options)
        pieces = _sum_back(result.per_request_bucket, pseudo, rid)
    return AttributionResult(
        pieces,
        result.per_device_bucket,
        result.dropped_samples,
        result.counter_intervals,
        result.counter_resets,
        lambda: _per_request(pieces, requests),
    )
