"""Stage judge (rules/judge.smk): LLM-as-judge verdicts and their table."""
