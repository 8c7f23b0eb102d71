"""divpref: diverging preferences in reward modeling, as a library of small pure functions.

The Snakemake rule scripts under ``scripts/`` are thin adapters onto these modules.
"""

ORDERED_LABELS = ("b_clearly", "b_slightly", "tie", "a_slightly", "a_clearly")
"""The five ordered preference labels; index ``i`` corresponds to signed strength ``i - 2``."""
