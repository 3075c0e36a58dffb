"""Version-controlled fleet files (inventory, deployments, models, fx_rates, regions, clock_offsets)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa

from pipelines.ingest.formats.common import (
    ParseContext,
    check_options,
    strip_bom,
    typed_records,
)
from pipelines.warehouse.contracts import load_contract


class FleetCsv:
    """A version-controlled fleet file (inventory, deployments, models, fx_rates, regions): a CSV whose header
    names the contract's columns; empty cells are missing values."""

    option_names = ()

    patterns = ("*.csv",)

    def __init__(self, name: str):
        self.name = name

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        check_options(self, ctx.options)
        contract = load_contract(self.name)
        lines = strip_bom(lines)
        raws = lines["raw_text"].to_pylist()
        if not raws:
            raise ValueError(f"{path}: empty fleet file")
        header = next(csv.reader([raws[0]]))
        missing = [c for c in contract.required if c not in header]
        if missing:
            raise ValueError(f"{path}: header lacks required columns {missing}")
        records, pre = [], []
        for raw in raws[1:]:
            row = next(csv.reader(io.StringIO(raw)), [])
            pre.append(None if len(row) == len(header) else f"expected {len(header)} fields, got {len(row)}")
            records.append(dict(zip(header, row)))
        body = lines.slice(1)
        pre = _refuse_repeated_keys(contract.key, path, records, body["source_line"].to_pylist(), pre)
        return typed_records(ctx, contract, body, records, pre)


def _refuse_repeated_keys(key, path: Path, records: list[dict], line_numbers: list[int], pre: list) -> list:
    """A key (a device id, a currency and day...) on more than one line refuses every one of those lines, each
    naming the others: which row is right (the stale one or the fix) is the file owner's call, never a silent one."""
    lines_of: dict[tuple, list[int]] = {}
    for rec, n, reason in zip(records, line_numbers, pre):
        k = tuple(str(rec.get(c) or "").strip() for c in key)
        if reason is None and all(k):
            lines_of.setdefault(k, []).append(n)
    out = []
    for rec, n, reason in zip(records, line_numbers, pre):
        k = tuple(str(rec.get(c) or "").strip() for c in key)
        seen = lines_of.get(k, [])
        if reason is None and len(seen) > 1:
            others = ", ".join(str(m) for m in seen if m != n)
            reason = (
                f"duplicate {'/'.join(key)} {'/'.join(k)}: also on line {others} of {path.name}; "
                "none of these rows is loaded until one is left"
            )
        out.append(reason)
    return out
