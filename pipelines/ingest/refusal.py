"""The guard a run passes before it replaces a loaded day: it must load something, and not quarantine far more of
its rows than the loaded day did. Imports no Dagster."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipelines.ingest.feeds import Feed
from pipelines.warehouse.connection import scalar, table_exists

# a run that rejects more than this share of its rows does not replace a loaded day that rejected under half as many
QUARANTINE_SHARE_LIMIT = 0.5
FORCE_HINT = (
    "to replace it anyway: `infercost ingest --replace-anyway`, or the ingest asset's run config replace_anyway: true"
)


def refusal(
    con: duckdb.DuckDBPyConnection, feed: Feed, day: date | None, counts: dict, files: list[Path] | None
) -> str | None:
    """Why this run must not replace the loaded day, or None. A day with loaded rows is not replaced by a run that
    loads none (no file, a reader that finds nothing of the day), nor by one that rejects more than
    QUARANTINE_SHARE_LIMIT of its rows when the loaded day rejected under half that share."""
    if day is None or not table_exists(con, feed.raw_table):
        return None
    loaded_before = scalar(con, f"SELECT count(*) FROM {feed.raw_table} WHERE partition_date = ?", [day])
    if not loaded_before:
        return None
    read, loaded, rejected = (sum(c[i] for c in counts.values()) for i in range(3))
    read_before, rejected_before = con.execute(
        "SELECT coalesce(sum(rows_read), 0), coalesce(sum(rows_quarantined), 0) FROM ingest_file_stats "
        "WHERE feed = ? AND partition_date = ?",
        [feed.name, day],
    ).fetchall()[0]
    share, share_before = rejected / max(read, 1), rejected_before / max(read_before, 1)
    if loaded == 0:
        why = f"it would load 0 rows ({len(files or [])} files, {read:,} rows of the day read)"
    elif share > QUARANTINE_SHARE_LIMIT and share_before < share / 2:
        why = (
            f"it would quarantine {rejected:,} of {read:,} rows ({share:.0%}, over "
            f"{QUARANTINE_SHARE_LIMIT:.0%}) where the loaded day quarantined {share_before:.1%}"
        )
    else:
        return None
    named = (
        "; ".join(f"{f} ({c[0]:,} read, {c[1]:,} loaded, {c[2]:,} quarantined)" for f, c in sorted(counts.items()))
        or ", ".join(str(f) for f in files or [])
        or "no file"
    )
    return (
        f"{feed.name} {day} ({feed.format or 'reader'}): refused to replace the loaded day ({loaded_before:,} rows): "
        f"{why}. Files: {named}. The loaded day is unchanged; {FORCE_HINT}"
    )
