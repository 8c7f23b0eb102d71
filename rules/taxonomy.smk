# Taxonomy of disagreement causes (Table 1): annotation sheets, and agreement once filled sheets exist.


rule taxonomy_sheet:
    input:
        pairs="results/{dataset}/pairs.parquet",
    output:
        sheet=report(
            "results/taxonomy/{dataset}_sheet.csv",
            caption="../report/taxonomy_sheet.rst",
            category="Taxonomy",
            labels={"dataset": "{dataset}", "file": "annotation sheet"},
        ),
        instructions="results/taxonomy/{dataset}_instructions.md",
    log:
        "logs/taxonomy_sheet/{dataset}.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        size=config["taxonomy"]["sheet_size"],
        seed=config["taxonomy"]["seed"],
        library=library_fingerprint("taxonomy_sheet"),
    script:
        "../scripts/taxonomy_sheet.py"


rule taxonomy_agreement:
    input:
        sheets=get_filled_sheets,
    output:
        agreement=report(
            "results/taxonomy/{dataset}_agreement.json",
            caption="../report/taxonomy_agreement.rst",
            category="Taxonomy",
            labels={"dataset": "{dataset}", "file": "annotator agreement"},
        ),
        frequencies=report(
            "results/taxonomy/{dataset}_cause_frequencies.csv",
            caption="../report/taxonomy_frequencies.rst",
            category="Taxonomy",
            labels={"dataset": "{dataset}", "file": "cause frequencies (Table 1)"},
        ),
    log:
        "logs/taxonomy_agreement/{dataset}.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        library=library_fingerprint("taxonomy_agreement"),
    script:
        "../scripts/taxonomy_agreement.py"
