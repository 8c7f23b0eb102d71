"""Stages train and select (rules/train.smk, rules/select.smk): the loop, data parallel, selection."""
