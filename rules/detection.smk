# Divergence detection (beyond the short paper): do the reward models know which pairs annotators disagree on?
# Preference accuracy and divergence AUROC for every condition; Mean-Var's lambda is tuned on dev-set scores.


rule score_dev:
    input:
        test=get_dev_pairs,
        adapter="results/models/{dataset}/{condition}/seed{seed}/adapter",
        train_log="results/train/{dataset}/{condition}/seed{seed}/train_log.json",
        code=library_code("score"),
        method_modules=get_method_modules,
    output:
        scores="results/scores_dev/{dataset}/{condition}/seed{seed}.parquet",
    log:
        "logs/score_dev/{dataset}/{condition}/seed{seed}.log",
    benchmark:
        "benchmarks/score_dev/{dataset}/{condition}/seed{seed}.tsv"
    wildcard_constraints:
        condition=_alternatives(TRAINED_CONDITIONS),
    conda:
        "../envs/train.yaml"
    threads: 2
    resources:
        # As rule score: runs on GPU where one is visible; profiles/slurm may ask for one.
        gpu=0,
        mem_mb=lambda wildcards, attempt: 24000 * attempt,
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        method=condition_method,
        method_modules=get_method_modules,
        model=config["model"],
        max_length=get_score_max_length,
        batch_size=config["evaluation"]["batch_size"],
    script:
        "../scripts/score.py"


rule detection_table:
    input:
        unpack(get_detection_inputs),
        code=library_code("detection_table"),
    output:
        csv=report(
            "results/tables/divergence_detection.csv",
            caption="../report/divergence_detection.rst",
            category="Divergence detection",
        ),
        md="results/tables/divergence_detection.md",
        pair_scores="results/detection/pair_scores.parquet",
    log:
        "logs/detection_table.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    params:
        runs=detection_runs(),
        datasets=detection_datasets(),
        lambda_grid=config["detection"]["lambda_grid"],
        bootstrap_samples=config["evaluation"]["bootstrap_samples"],
        confidence=config["evaluation"]["confidence"],
        seed=config["evaluation"]["seed"],
    script:
        "../scripts/detection_table.py"


rule plot_roc:
    input:
        pair_scores="results/detection/pair_scores.parquet",
        code=library_code("plot_roc"),
    output:
        png=report(
            "results/plots/roc_{dataset}.png",
            caption="../report/roc_curves.rst",
            category="Divergence detection",
            subcategory="{dataset}",
        ),
        pdf="results/plots/roc_{dataset}.pdf",
    log:
        "logs/plot_roc/{dataset}.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    script:
        "../scripts/plot_roc.py"
