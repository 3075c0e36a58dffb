"""Fuzzing the ingest: valid lines from the sample day (and hand-written ones for formats with no sample), mutated
the ways real files go wrong, must never raise, and every line must come out loaded or quarantined.

Each hypothesis example draws a seed and writes one file of LINES_PER_EXAMPLE lines, most of them mutated;
EXAMPLES examples per format give at least 10,000 mutations for each of the three main feeds (requests, telemetry,
prices). Examples are derandomized so that CI runs the same cases every time.
"""

import gzip
import json
import random
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.ingest.loader import ingest_files, read_lines
from tests.conftest import REPO

LINES_PER_EXAMPLE = 250
EXAMPLES = 50  # 50 x 250 x ~0.95 mutated: about 11,900 mutations per feed

NASTY = [
    "",
    " ",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "-1",
    "-0",
    "0",
    "1e309",
    "1e-320",
    "9" * 30,
    "[N/A]",
    "[Not Supported]",
    "null",
    "None",
    "true",
    "abc",
    '"',
    "'",
    "{",
    "}",
    "[",
    "]",
    ",",
    ",,",
    "\\",
    "\t",
    "9999-99-99",
    "2026-13-45 25:61:61",
    "1970-01-01T00:00:00Z",
    "2099-01-01T00:00:00Z",
    "2026/11/02",
    "2026-11-02T10:00:00+25:00",
    "\u00e9\u4e2d\U0001f600",
    "\x00",
    "x" * 5000,
    "-12.5 W",
    "300 W",
    "1,5",
]
NOISE = "abcXYZ019 ,.;:-+/\\\"'{}[]()\t\r\x00\x7f\u00e9\u4e2d\U0001f600"


def mutate(line: str, rng: random.Random) -> bytes:
    """One mutation of a valid line, as bytes (some mutations are not UTF-8)."""
    op = rng.randrange(12)
    if op == 0:  # delete a slice
        i = rng.randrange(len(line) + 1)
        j = min(len(line), i + rng.randrange(1, 20))
        out = line[:i] + line[j:]
    elif op == 1:  # insert noise
        i = rng.randrange(len(line) + 1)
        out = line[:i] + "".join(rng.choice(NOISE) for _ in range(rng.randrange(1, 8))) + line[i:]
    elif op in (2, 3, 4):  # replace a field or a JSON value with a nasty one
        sep = "," if rng.random() < 0.5 or not line.startswith("{") else ":"
        parts = line.split(sep)
        k = rng.randrange(len(parts))
        value = rng.choice(NASTY)
        if sep == ":" and rng.random() < 0.5:
            value = json.dumps(value) + ("}" * parts[k].count("}"))
        parts[k] = value
        out = sep.join(parts)
    elif op == 5:  # truncate
        out = line[: rng.randrange(len(line) + 1)]
    elif op == 6:  # swap two fields
        parts = line.split(",")
        if len(parts) > 1:
            a, b = rng.sample(range(len(parts)), 2)
            parts[a], parts[b] = parts[b], parts[a]
        out = ",".join(parts)
    elif op == 7:  # bytes that are not UTF-8
        raw = line.encode()
        i = rng.randrange(len(raw) + 1)
        return raw[:i] + rng.choice([b"\xff", b"\xfe\xfd", b"\xc3", b"\xe2\x82", b"\x80"]) + raw[i:]
    elif op == 8:  # CRLF, or a stray carriage return
        out = line + "\r" if rng.random() < 0.5 else line.replace(",", ",\r", 1)
    elif op == 9:  # a number shifted by orders of magnitude, or its sign flipped
        out = line.replace("0", rng.choice(["0000", "-0", "0.0e9"]), 1)
    elif op == 10:  # the line twice on one line
        out = line + line
    else:  # a duplicate of the whole line (written twice below)
        out = line
    return out.encode("utf-8", errors="surrogatepass")


def sample_lines(path, n=400) -> tuple[str | None, list[str]]:
    lines, _ = read_lines(path)
    raws = lines["raw_text"].to_pylist()
    return raws[0], raws[1 : n + 1]


def build_file(rng: random.Random, header: str | None, valid: list[str]) -> tuple[bytes, int]:
    """A file's bytes and its number of mutations; the header (if any) is kept intact."""
    out, mutations = [], 0
    for _ in range(LINES_PER_EXAMPLE):
        line = rng.choice(valid)
        if rng.random() < 0.05:
            out.append(line.encode())
            continue
        mutated = mutate(line, rng)
        mutations += 1
        out.append(mutated)
        if rng.random() < 0.05:
            out.append(mutated)  # duplicated lines
        if rng.random() < 0.02:
            out.append(b"")  # blank lines
    body = b"\n".join(([header.encode()] if header else []) + out) + b"\n"
    return body, mutations


def expected_rows(data: bytes, header: bool) -> int:
    text = data.decode("utf-8", errors="replace")
    n = sum(1 for line in text.split("\n") if line.rstrip("\r").strip())
    return n - (1 if header else 0)


def otel_lines():
    from tests.test_formats_requests import GENAI, T0_NS, span

    export = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "spans": [
                            span(f"s{i}", T0_NS + i, T0_NS + 10**9 + i, {**GENAI, "gen_ai.response.id": f"r{i}"})
                            for i in range(3)
                        ]
                    }
                ],
            }
        ]
    }
    return None, [json.dumps(export)]


def dcgm_lines():
    from tests.test_formats_telemetry import scrape

    t0 = 1_793_613_600_000
    return None, [line for i in range(20) for line in scrape(300 + i, 10**6 + i * 3 * 10**5, 50, 10, t0 + 1000 * i)]


def litellm_lines():
    from tests.test_ingest import LITELLM_HEADER

    row = (
        "ll-{i},2026-11-02T10:00:0{d},2026-11-02T10:00:05,2026-11-02T10:00:04,m,llama-3.1-8b-instruct,"
        "http://10.0.0.5:8000,120,40,team,u1,[],False,success"
    )
    return LITELLM_HEADER, [row.format(i=i, d=i % 4) for i in range(20)]


def counter_lines():
    return (
        "timestamp,gpu_uuid,total_energy_mj,power_mw,hostname",
        [
            f"{1793613600 + i},GPU-500320d4-f8f2-4545-b2d7-e6de5793354a,{10**6 + 3 * 10**5 * i},300000,h"
            for i in range(20)
        ],
    )


FORMATS = {
    # feed, format, file name, where valid lines come from, whether the first line is a header, and whether one
    # line is one row (so that rows read must equal the lines written)
    "openai_jsonl": (
        "requests",
        None,
        "fuzz.jsonl",
        REPO / "sample_logs" / "requests" / "2026-11-02.jsonl.gz",
        False,
        True,
    ),
    "nvidia_smi_csv": (
        "telemetry",
        None,
        "us-west-h100-large-000_fuzz.csv",
        REPO / "sample_logs" / "telemetry" / "us-west-h100-large-000_2026-11-02.csv.gz",
        True,
        True,
    ),
    "market_csv": (
        "prices",
        None,
        "us-west_fuzz.csv",
        REPO / "sample_logs" / "prices" / "us-west_2026-11-02.csv",
        True,
        True,
    ),
}
# the other readers, fewer examples each: no exception, and every row they make is loaded or quarantined
MORE_FORMATS = {
    "otel_genai_json": ("requests", "otel_genai_json", "fuzz.jsonl", otel_lines, False, False),
    "litellm": ("requests", "litellm", "fuzz.csv", litellm_lines, True, True),
    "dcgm_prometheus": ("telemetry", "dcgm_prometheus", "fuzz.prom", dcgm_lines, False, False),
    # a quoted field may span lines in a mapped CSV: a stray quote can join a few lines into one record
    "energy_counter_csv": ("telemetry", "energy_counter_csv", "fuzz.csv", counter_lines, True, False),
}


def run_example(con, tmp_path, name, seed, compress):
    feed, fmt, file_name, source, header, line_is_row = {**FORMATS, **MORE_FORMATS}[name]
    head, valid = source() if callable(source) else sample_lines(source)
    rng = random.Random(seed)
    lines = valid if header or head is None else [head] + valid
    data, mutations = build_file(rng, head if header else None, lines)
    path = tmp_path / (file_name + (".gz" if compress else ""))
    truncated = False
    if compress:
        packed = gzip.compress(data)
        if compress == "truncated":
            packed, truncated = packed[: rng.randrange(20, len(packed))], True
        path.write_bytes(packed)
    else:
        path.write_bytes(data)
    con.execute(f"DELETE FROM raw_{feed}")
    con.execute("DELETE FROM ingest_quarantine")
    con.execute("DELETE FROM ingest_file_stats")
    try:
        report = ingest_files(con, feed, [path], None, fmt=fmt)  # every day at once: a row may land anywhere
    except Exception as exc:
        if truncated and "not a readable gzip file" in str(exc):
            return 0  # damaged within the gzip header: the file cannot be read at all, and says so
        raise
    assert report.rows_read == report.rows_loaded + report.rows_quarantined + report.rows_skipped
    stats = con.execute(
        f"SELECT sum(rows_read), sum(rows_loaded), sum(rows_quarantined) FROM ingest_file_stats WHERE feed = '{feed}'"
    ).fetchall()[0]
    assert stats == (report.rows_read, report.rows_loaded, report.rows_quarantined)
    assert con.execute(f"SELECT count(*) FROM raw_{feed}").fetchall()[0][0] == report.rows_loaded
    assert (
        con.execute("SELECT count(*) FROM ingest_quarantine WHERE reason IS NULL OR reason = ''").fetchall()[0][0] == 0
    )
    if line_is_row and not truncated:
        assert report.rows_read == expected_rows(data, header)
    path.unlink()
    return mutations


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_mutated_lines_never_raise_and_every_line_is_accounted_for(name, con, tmp_path):
    seen = []

    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(seed=st.integers(0, 2**32 - 1), compress=st.sampled_from([None, None, None, "gzip", "truncated"]))
    def check(seed, compress):
        seen.append(run_example(con, tmp_path, name, seed, compress))

    check()
    assert sum(seen) >= 10_000, sum(seen)


@pytest.mark.parametrize("name", sorted(MORE_FORMATS))
def test_other_readers_survive_mutations(name, con, tmp_path):
    @settings(max_examples=8, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(seed=st.integers(0, 2**32 - 1), compress=st.sampled_from([None, "gzip", "truncated"]))
    def check(seed, compress):
        run_example(con, tmp_path, name, seed, compress)

    check()


def test_a_damaged_gzip_header_fails_with_the_file_named(con, tmp_path):
    path = tmp_path / "fuzz.jsonl.gz"
    path.write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(Exception, match="fuzz.jsonl.gz: not a readable gzip file"):
        ingest_files(con, "requests", [path], date(2026, 11, 2))
