"""Metrics: arrays in, arrays out. Nothing here knows about files, config or Snakemake."""
