"""Version-controlled fleet files (inventory, deployments, models, fx_rates, regions, clock_offsets)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow as pa

from pipelines.ingest.formats.common import ParseContext, typed_records
from pipelines.warehouse.contracts import load_contract


class FleetCsv:
    """A version-controlled fleet file (inventory, deployments, models, fx_rates, regions): a CSV whose header
    names the contract's columns; empty cells are missing values."""

    patterns = ("*.csv",)

    def __init__(self, name: str):
        self.name = name

    def parse(self, ctx: ParseContext, path: Path, lines: pa.Table) -> str:
        contract = load_contract(self.name)
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
        return typed_records(ctx, contract, lines.slice(1), records, pre)


