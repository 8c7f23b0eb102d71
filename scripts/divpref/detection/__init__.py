"""Stage detection (rules/detection.smk): do reward models know when annotators disagree?"""
