import os

import dagster as dg

# first day a fleet may have data for; backfills before it are refused by Dagster
START_DATE = os.environ.get("INFERCOST_START_DATE", "2026-01-01")

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")

# a range backfill runs as one run (ingest and attribution loop over its days, dbt builds once)
single_run = dg.BackfillPolicy.single_run()

import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=dg.BetaWarning)
