# Diverging preferences in reward modeling: from raw annotations to Table 2 and beyond.
# This file is an index; every stage lives in rules/, its helpers in rules/helpers/
# (included by rules/common.smk, which holds the config lookups and the condition grid).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/select.smk"
include: "rules/evaluate.smk"
include: "rules/detection.smk"
include: "rules/taxonomy.smk"
include: "rules/judge.smk"
include: "rules/flag.smk"
include: "rules/share.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),
