"""Price-like region series: market prices and grid carbon intensity, one file per region."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from pipelines.ingest.formats.common import (
    ParseContext,
    check_options,
    columns_sql,
    empty_mapped,
    finish,
    register,
    sql_str,
    strip_bom,
)
from pipelines.warehouse.contracts import load_contract


def _unknown_region(ctx: ParseContext, contract, region: str, lines: pa.Table) -> str:
    """Every row of a price file whose region the fleet does not know, quarantined saying why."""
    reason = sql_str(
        f"region {region!r} (from the file name) is not in fleet/regions.csv, or its row there "
        "was refused (see the quarantine of regions)"
    )
    return finish(
        ctx,
        contract,
        f"SELECT source_file, source_line, raw_text, {reason} AS pre_reason, "
        f"{columns_sql(contract, {})} FROM {register(ctx, lines.slice(1))}",
    )


class RegionSeriesCsv:
    """An hourly or sub-hourly series per region, one file per region named <region>_*.csv, as
    ``Datetime,<Label> (<unit>)``. The region's row in fleet/regions.csv gives the zone of naive timestamps (UTC
    or local) and the interval length; each timestamp is the start of its interval. Timestamps with a UTC offset
    are read as such. Options: ``value_column`` (a header name, for files with several value columns) and
    ``currency`` (when the header does not say)."""

    option_names = ("currency", "value_column")

    patterns = ("*.csv", "*.csv.gz")
    feed = ""

    def header_columns(self, path: Path, header: str, market: str) -> dict:
        """Constant canonical columns read from the header (name -> value)."""
        return {}

    value_column = ""

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        check_options(self, ctx.options)
        lines = strip_bom(lines)
        contract = load_contract(self.feed)
        region = path.name.split("_")[0].removesuffix(".csv").removesuffix(".gz")
        found = ctx.con.execute(
            "SELECT market, price_timezone, interval_minutes FROM raw_regions WHERE region = ?", [region]
        ).fetchall()
        if lines.num_rows == 0:
            return finish(ctx, contract, empty_mapped(contract))
        if not found:  # every row is quarantined saying why; the other regions' files still load
            return _unknown_region(ctx, contract, region, lines)
        market, tz, minutes = found[0]
        header = lines["raw_text"][0].as_py()
        names = [h.strip() for h in header.split(",")]
        constants = self.header_columns(path, header, market)
        if ctx.options.get("currency"):
            constants["currency"] = ctx.options["currency"]
        if "currency" in constants and not constants["currency"]:
            raise ValueError(
                f"{path}: header {header!r} names no currency as 'Price (CUR/MWh)'; give the currency option"
            )
        # the value column: the option's name, else the second column (e.g. "Real price" in epftoolbox files)
        wanted = ctx.options.get("value_column")
        if wanted and wanted not in names:
            raise ValueError(f"{path}: no column {wanted!r} in header {header!r}")
        pos = names.index(wanted) + 1 if wanted else 2
        src = register(ctx, lines.slice(1))
        raw = {
            "region": sql_str(region),
            "interval_start": "parts[1]",
            "interval_end": "parts[1]",
            self.value_column: f"parts[{pos}]",
            **{k: sql_str(v) for k, v in constants.items()},
        }
        typed = {"interval_start": "start_ts", "interval_end": f"start_ts + INTERVAL {int(minutes)} MINUTE"}
        mapped = f"""
            WITH s0 AS (SELECT *, string_split(raw_text, ',') AS parts FROM {src}),
            s AS (SELECT s0.* REPLACE (list_transform(parts, lambda x: trim(x)) AS parts) FROM s0),
            t AS (SELECT *, CASE
                        -- an explicit UTC offset (ERCOT's -06:00/-05:00) says which instant is meant
                        WHEN regexp_matches(parts[1], '[+-]\\d{{2}}:?\\d{{2}}$') THEN TRY_CAST(parts[1] AS TIMESTAMPTZ)
                        -- naive: local time in the region's zone (a time the spring DST gap skips maps forward)
                        ELSE timezone({sql_str(tz)}, try_strptime(parts[1],
                            ['%Y-%m-%d %H:%M:%S', '%Y-%m-%d %H:%M', '%Y-%m-%dT%H:%M:%S'])) END AS start_ts FROM s)
            SELECT source_file, source_line, raw_text,
                CASE WHEN len(parts) <> {len(names)} THEN 'expected {len(names)} fields, got ' || len(parts)
                END AS pre_reason,
                {columns_sql(contract, raw, typed)}
            FROM t
        """
        return finish(ctx, contract, mapped)


class MarketPriceCsv(RegionSeriesCsv):
    """Hourly or sub-hourly prices as ``Datetime,Price (<CUR>/MWh)`` (the market and its time zone come from
    fleet/regions.csv)."""

    feed = "prices"
    value_column = "price_per_mwh"

    def header_columns(self, path, header, market):
        m = re.search(r"\(([A-Z]{3})/MWh\)", header)
        return {"currency": m.group(1) if m else "", "market": market}


class CarbonIntensityCsv(RegionSeriesCsv):
    """Grid carbon intensity as ``Datetime,Carbon Intensity (gCO2eq/kWh)``, one file per region under carbon/."""

    feed = "carbon"
    value_column = "g_co2e_per_kwh"

    def header_columns(self, path, header, market):
        if not re.search(r"gCO2(eq|e)?/kWh", header):
            raise ValueError(f"{path}: header {header!r} does not give gCO2eq/kWh")
        return {}
