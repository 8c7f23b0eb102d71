"""Stage flag (rules/flag.smk): flagging contested pairs with a trained reward model."""
