"""Stage data (rules/data.smk): hub sources, normalizing, agreement categories, splits, training sets."""
