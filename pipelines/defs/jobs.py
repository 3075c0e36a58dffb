import dagster as dg

from pipelines.settings import current

daily_cost_job = dg.define_asset_job(
    "daily_cost_job",
    selection=dg.AssetSelection.all(),
    description="Ingest the day's feeds, attribute energy, and rebuild the cost marts.",
)

# every day at 02:00 UTC, for the day before (a daily schedule built from a partitioned job targets the last
# complete partition); switched on from the start when INFERCOST_SCHEDULE_RUNNING is true (`infercost serve`)
daily_cost_schedule = dg.build_schedule_from_partitioned_job(
    daily_cost_job,
    hour_of_day=2,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING if current().schedule_running else dg.DefaultScheduleStatus.STOPPED,
)
