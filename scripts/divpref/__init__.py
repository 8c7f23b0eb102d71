"""divpref: diverging preferences in reward modeling, as a library of small pure functions.

The Snakemake rule scripts under ``scripts/`` are thin adapters onto these modules.
"""
