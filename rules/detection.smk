# Divergence detection (beyond the short paper): do the reward models know which pairs annotators disagree on?
# Preference accuracy and divergence AUROC for every condition; Mean-Var's lambda is tuned on dev-set scores.


# Rule score on the dev pairs the checkpoint was selected on (as profiles/slurm, it may ask for a GPU).
use rule score as score_dev with:
    input:
        test=get_dev_pairs,
        adapter="results/models/{dataset}/{condition}/seed{seed}/adapter",
        train_log="results/train/{dataset}/{condition}/seed{seed}/train_log.json",
        method_modules=get_method_modules,
    output:
        scores="results/scores_dev/{dataset}/{condition}/seed{seed}.parquet",
    log:
        "logs/score_dev/{dataset}/{condition}/seed{seed}.log",
    benchmark:
        "benchmarks/score_dev/{dataset}/{condition}/seed{seed}.tsv"


rule detection_table:
    input:
        unpack(get_detection_inputs),
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
    resources:
        **cpu_job_resources(),
    params:
        runs=detection_runs(),
        datasets=detection_datasets(),
        lambda_grid=config["detection"]["lambda_grid"],
        classification_score=config["detection"].get(
            "classification_score", "extreme_joint"
        ),
        bootstrap_samples=config["evaluation"]["bootstrap_samples"],
        confidence=config["evaluation"]["confidence"],
        seed=config["evaluation"]["seed"],
        library=library_fingerprint("detection_table"),
    script:
        "../scripts/detection_table.py"


rule plot_roc:
    input:
        pair_scores="results/detection/pair_scores.parquet",
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
    resources:
        **cpu_job_resources(),
    params:
        library=library_fingerprint("plot_roc"),
    script:
        "../scripts/plot_roc.py"
