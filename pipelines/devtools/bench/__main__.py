"""``python -m pipelines.devtools.bench``: see command.py."""

from pipelines.devtools.bench.command import main

main()
