from datetime import date, timedelta

import dagster as dg

from pipelines.settings import current

# first day a fleet may have data for; backfills before it are refused by Dagster
START_DATE = current().start_date

daily_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC")

# a range backfill runs as one run (ingest and attribution loop over its days, dbt builds once)
single_run = dg.BackfillPolicy.single_run()


def partition_days(context: dg.AssetExecutionContext) -> list[date]:
    """The UTC days of the run's partition or partition range."""
    window = context.partition_time_window
    first, end = window.start.date(), window.end.date()
    return [first + timedelta(days=i) for i in range((end - first).days)]


import warnings  # noqa: E402

warnings.filterwarnings("ignore", category=dg.BetaWarning)
