"""Stage taxonomy (rules/taxonomy.smk): Table 1's annotation sheets and their agreement."""
