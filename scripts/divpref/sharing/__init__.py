"""Stage share (rules/share.smk): shareable adapter folders with model cards, and the optional hub upload."""
