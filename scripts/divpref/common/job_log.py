"""Route a rule script's stdout, stderr and logging into its snakemake log file."""

import logging
import sys


def log_to_file(path: str) -> None:
    """Send stdout, stderr and the root logger to ``path`` (appending, line-buffered)."""
    stream = open(path, "a", buffering=1)
    sys.stdout = stream
    sys.stderr = stream
    logging.basicConfig(
        stream=stream,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
