"""The FOCUS 1.2 column rules the export is held to (the spec's mandatory columns, their allowed values, the
timestamp format, the cost identities), shared by tests/test_focus.py and the end-to-end test."""

import json
import re
from datetime import datetime

import pytest

from pipelines.outputs.focus import CUSTOM_COLUMNS, FOCUS_COLUMNS, UNALLOCATED

# FOCUS writes date-times as ISO 8601 in UTC with a Z and whole seconds
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
TIMESTAMP_COLUMNS = ("BillingPeriodEnd", "BillingPeriodStart", "ChargePeriodEnd", "ChargePeriodStart")
NOT_NULL = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "ChargeCategory",
    "ChargeDescription",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
)


def check_focus_rows(rows: list[dict], text: bool = True) -> None:
    """rows as read from the CSV (all text) or JSON (text=True) export."""
    assert rows
    assert list(rows[0]) == FOCUS_COLUMNS + CUSTOM_COLUMNS
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", c) for c in FOCUS_COLUMNS)
    assert all(c.startswith("x_") for c in CUSTOM_COLUMNS)
    for r in rows:
        for c in NOT_NULL:
            assert r[c] not in ("", None), (c, r)
        assert r["ChargeCategory"] in {"Usage", "Purchase", "Tax", "Credit", "Adjustment"}
        assert r["ChargeClass"] in ("", None, "Correction")
        assert r["ChargeFrequency"] in {"One-Time", "Recurring", "Usage-Based"}
        assert r["ServiceCategory"] == "AI and Machine Learning"
        assert re.fullmatch(r"[A-Z]{3}", r["BillingCurrency"]) and re.fullmatch(r"[A-Z]{3}", r["PricingCurrency"])
        for c in TIMESTAMP_COLUMNS:
            assert TIMESTAMP.fullmatch(r[c]), (c, r[c])
        ts = {c: datetime.fromisoformat(r[c]) for c in TIMESTAMP_COLUMNS}
        assert ts["ChargePeriodStart"] < ts["ChargePeriodEnd"]
        assert ts["BillingPeriodStart"] <= ts["ChargePeriodStart"] < ts["BillingPeriodEnd"]
        for cost in ("BilledCost", "EffectiveCost", "ListCost", "ContractedCost"):
            assert float(r[cost]) >= 0
        assert float(r["EffectiveCost"]) == float(r["BilledCost"])
        # usage rows carry what was consumed: tokens for requests, hours of idle device time for idle capacity
        assert float(r["ConsumedQuantity"]) > 0
        expected_unit = "Hours" if r["SubAccountId"] == UNALLOCATED else "Tokens"
        assert r["ConsumedUnit"] == r["PricingUnit"] == expected_unit
        assert float(r["ListUnitPrice"]) * float(r["PricingQuantity"]) == pytest.approx(float(r["ListCost"]))
        tags = json.loads(r["Tags"])
        if r["SubAccountId"] == UNALLOCATED:
            assert tags["idle"] == UNALLOCATED and r["x_Model"] in ("", None)
        else:
            assert tags["model"] == r["x_Model"]
