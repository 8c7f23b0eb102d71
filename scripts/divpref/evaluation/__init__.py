"""Stage evaluate (rules/evaluate.smk): scoring test pairs, Table 2, plots, the report."""
