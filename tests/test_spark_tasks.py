"""The spark engine's parse task (pipelines/spark/tasks.py) called directly, without Spark: it stages a file's rows
as the loader does, whatever its batch cuts, and tells the driver of the file's rows of other days."""

from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.ingest import other_days
from pipelines.ingest.feeds import resolve_landing_feed
from pipelines.ingest.files import files_table
from pipelines.ingest.loader import ingest_feed
from pipelines.spark import tasks
from pipelines.warehouse.contracts import FLEET_TABLES
from tests.test_ingest_other_days import requests_of, write

NOV2, NOV3 = date(2026, 11, 2), date(2026, 11, 3)


def parse(con, landing: Path, day: date, files: list[Path], found=None) -> pa.Table:
    feed = resolve_landing_feed("requests", landing)
    dims = {f"raw_{n}": con.sql(f"SELECT * FROM raw_{n}").to_arrow_table() for n in FLEET_TABLES}
    dims["ingest_quarantine"] = con.sql("SELECT * FROM ingest_quarantine WHERE false").to_arrow_table()
    out = list(tasks.parse_files(feed, day, files_table(files), dims, [str(f) for f in files], landing, found))
    return pa.concat_tables(out)


def staged(rows: pa.Table) -> list[tuple]:
    kept = rows.filter(rows.column(tasks.OTHER_DAY).is_null())
    return sorted(zip(*(kept.column(c).to_pylist() for c in ("source_line", "partition_date", "reason"))))


def test_a_task_stages_a_bad_line_on_the_same_day_wherever_its_batches_are_cut(con, landing, monkeypatch):
    """A bad line after the last row of 11-02 and before the first of 11-03 belongs to 11-02 (the nearest valid
    row before it), also when a batch starts with it: the task carries its file's last valid date over its batch
    cuts as the loader does (load_sql.carried_date_sql). Batches of one piece of about one line stand in for a
    fleet's 2M-line batches."""
    import pipelines.ingest.decompress as decompress
    import pipelines.ingest.loader as loader

    evening = [r.replace("T10:00:0", "T23:00:0") for r in requests_of(NOV2, range(9))]
    bad = "{bad line between the days" + "x" * 380
    write(landing, "api_2026-11-03.jsonl", evening + [bad] + requests_of(NOV3, range(100, 105)))
    files = [landing / "requests" / "api_2026-11-03.jsonl"]  # named for the later day
    whole = {day: staged(parse(con, landing, day, files)) for day in (NOV2, NOV3)}
    monkeypatch.setattr(tasks, "BATCH_LINES", 1)
    monkeypatch.setattr(loader, "CHUNK_BYTES", 300)
    monkeypatch.setattr(decompress, "READ_BLOCK_BYTES", 300)
    cut = {day: staged(parse(con, landing, day, files)) for day in (NOV2, NOV3)}
    assert cut == whole
    assert [line for line, _, reason in whole[NOV2] if reason] == [10]  # quarantined by 11-02's run
    assert not [line for line, _, reason in whole[NOV3] if reason]
    assert len(whole[NOV2]) == 10 and len(whole[NOV3]) == 5


def test_a_task_counts_the_rows_of_other_days_and_keys_those_their_day_never_read(con, landing):
    """As the loader does (tests/test_ingest_other_days.py): rows of 11-02 delivered in a file of 11-03 after
    11-02's run are counted and keyed; the driver then finds them missing from the warehouse."""
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(20)))
    ingest_feed(con, "requests", landing, NOV2)
    late = landing / "requests" / "2026-11-03-delivery.jsonl"
    write(landing, late.name, requests_of(NOV2, range(100, 105)) + requests_of(NOV3, range(200, 210)))
    feed = resolve_landing_feed("requests", landing)
    found = other_days.for_run(con, feed, NOV3)
    rows = parse(con, landing, NOV3, [landing / "requests" / "api_2026-11-02.jsonl", late], found)
    assert found.counts == {}  # the driver's copy is left as it was: the task counts in its own
    assert len(staged(rows)) == 10
    side = rows.filter(rows.column(tasks.OTHER_DAY).is_valid())
    kinds = list(zip(*(side.column(c).to_pylist() for c in (tasks.OTHER_DAY, "source_file", "event_date"))))
    counts = {(f, d): n for (k, f, d), n in zip(kinds, side.column(tasks.OTHER_DAY_ROWS).to_pylist()) if k == "count"}
    # 11-02's own file holds 20 rows of 11-02, which its run read; the late file 5, which it did not
    assert counts == {(str(landing / "requests" / "api_2026-11-02.jsonl"), NOV2): 20, (str(late), NOV2): 5}
    keys = side.filter(pc.equal(side.column(tasks.OTHER_DAY), "key"))
    assert sorted(keys.column("request_id").to_pylist()) == sorted(f"req-{i}" for i in range(100, 105))
    assert set(keys.column("source_file").to_pylist()) == {str(late)}


def test_a_task_counts_each_files_days_as_the_loader_remembers_them(con, landing):
    """The file memory's counts (file_days.add_batch) from the parse task equal those the loader keeps for the same
    files and day: rows filed per day, a bad line filed to its neighbour's day, a row quarantined for being far
    from its file's date (dated on another day), and an undated file (a NULL day)."""
    from pipelines.spark.ingest import _file_days

    evening = [r.replace("T10:00:0", "T23:00:0") for r in requests_of(NOV2, range(9))]
    far = requests_of(date(2026, 10, 20), [50])  # more than a day from the file's date: quarantined, dated 10-20
    write(landing, "api_2026-11-03.jsonl", evening + ["{bad"] + far + requests_of(NOV3, range(100, 105)))
    write(landing, "api_2026-11-02.jsonl", requests_of(NOV2, range(20)))
    write(landing, "notes.jsonl", ["{not json", "{nor this"])  # undated: its lines take the run's day
    files = sorted((landing / "requests").iterdir())
    ingest_feed(con, "requests", landing, NOV3)
    remembered = con.execute("SELECT source_file, partition_date, rows_filed, rows_dated FROM ingest_file_days")
    remembered = remembered.fetchall()
    rows = parse(con, landing, NOV3, files)  # the task reads only the fleet tables of the warehouse
    side = rows.filter(pc.is_in(rows.column(tasks.OTHER_DAY), pa.array(tasks.FILE_DAY_KINDS)))
    counted = {(f, d): (filed, dated) for (f, d), (filed, dated, sharing) in _file_days(side).items()}
    assert counted == {(f, d): (filed, dated) for f, d, filed, dated in remembered}
    assert counted[(str(landing / "requests" / "notes.jsonl"), None)] == (2, 0)
    assert counted[(str(landing / "requests" / "api_2026-11-03.jsonl"), date(2026, 10, 20))] == (0, 1)
    # 9 rows of 11-02, then the bad line and the far row, quarantined on the day of the valid row before them
    assert counted[(str(landing / "requests" / "api_2026-11-03.jsonl"), NOV2)] == (11, 0)
