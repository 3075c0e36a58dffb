"""`python -m pipelines.cli` runs the `infercost` command."""

from pipelines.cli.main import main

main()
