"""The spark engine (INFERCOST_ENGINE=spark): the same ingest rules and attribution kernel run on a Spark cluster,
per file and per device group, and write the Parquet lake (pipelines/warehouse/lake.py); the warehouse's marts then
read the lake. Imports pyspark only inside the functions that need it, and no Dagster."""

# the feeds the spark engine runs (the big ones); prices, carbon and the fleet files stay on DuckDB (a few thousand
# rows a day)
SPARK_FEEDS = ("requests", "telemetry")
