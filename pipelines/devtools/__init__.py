"""Developer tools: the seeded sample-fleet generator and the benchmarks. Not used by the pipeline itself."""
