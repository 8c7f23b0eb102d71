"""Pieces every stage shares: constants, atomic writes, job logs, the bootstrap, score joins, devices."""
