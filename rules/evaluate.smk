# Evaluation: score the test pairs with every selected model, then Table 2, the divergence table and plots.


rule score:
    input:
        adapter="results/models/{dataset}/{condition}/seed{seed}/adapter",
        train_log="results/train/{dataset}/{condition}/seed{seed}/train_log.json",
        test="results/{dataset}/test.parquet",
        method_modules=get_method_modules,
    output:
        scores="results/scores/{dataset}/{condition}/seed{seed}.parquet",
    log:
        "logs/score/{dataset}/{condition}/seed{seed}.log",
    benchmark:
        "benchmarks/score/{dataset}/{condition}/seed{seed}.tsv"
    wildcard_constraints:
        condition=_alternatives(TRAINED_CONDITIONS),
    conda:
        TRAIN_ENV
    # One thread, as score_dev: on a CPU host a scoring job is mostly start-up (imports, model load), so two
    # single-thread jobs beat one two-thread job (the rewards are bit-identical); on a cluster the GPU scores.
    threads: 1
    resources:
        # Scoring the test pairs with the selected adapter: one GPU.
        **gpu_job_resources(
            1,
            cpus_per_gpu=4,
            mem_mb=lambda wildcards, attempt: 32000 * attempt,
            runtime_per_attempt=120,
        ),
    params:
        method=condition_method,
        method_modules=get_method_modules,
        model=config["model"],
        max_length=get_score_max_length,
        batch_size=config["evaluation"]["batch_size"],
        library=library_fingerprint("score"),
    script:
        "../scripts/score.py"


rule table2:
    input:
        unpack(get_table2_table_inputs),
    output:
        csv=report(
            "results/tables/table2.csv",
            caption="../report/table2_csv.rst",
            category="Table 2",
            labels={"table": "Table 2 (long form, CSV)"},
        ),
        md="results/tables/table2.md",
        tex="results/tables/table2.tex",
        html=report(
            "results/tables/table2.html",
            caption="../report/table2.rst",
            category="Table 2",
            labels={"table": "Table 2 (paper layout)"},
        ),
    log:
        "logs/table2.log",
    benchmark:
        "benchmarks/table2.tsv"
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        runs=get_table2_runs(),
        test_datasets=list(get_table2_tests()),
        evaluation=config["evaluation"],
        flag_dataset=lookup(dpath="flag/dataset", within=config, default=None),
        library=library_fingerprint("table2"),
    script:
        "../scripts/table2.py"


rule divergence_table:
    input:
        summaries=expand("results/{dataset}/divergence_summary.csv", dataset=DATASETS),
    output:
        csv=report(
            "results/tables/divergence.csv",
            caption="../report/divergence_csv.rst",
            category="Divergence",
            labels={"table": "Agreement categories (CSV)"},
        ),
        html=report(
            "results/tables/divergence.html",
            caption="../report/divergence.rst",
            category="Divergence",
            labels={"table": "Agreement categories"},
        ),
    log:
        "logs/divergence_table.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        datasets=DATASETS,
        library=library_fingerprint("divergence_table"),
    script:
        "../scripts/divergence_table.py"


rule plot_scores:
    input:
        unpack(get_table2_inputs),
    output:
        png=report(
            "results/plots/score_distributions.png",
            caption="../report/plot_scores.rst",
            category="Plots",
            labels={"figure": "Chosen vs. rejected by agreement subset"},
        ),
        pdf="results/plots/score_distributions.pdf",
    log:
        "logs/plot_scores.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        runs=get_table2_runs(),
        test_datasets=list(get_table2_tests()),
        seed=config["evaluation"]["seed"],
        library=library_fingerprint("plot_scores"),
    script:
        "../scripts/plot_scores.py"


rule plot_divergence:
    input:
        divergence="results/tables/divergence.csv",
    output:
        png=report(
            "results/plots/divergence_rates.png",
            caption="../report/plot_divergence.rst",
            category="Plots",
            labels={"figure": "Agreement categories per dataset"},
        ),
        pdf="results/plots/divergence_rates.pdf",
    log:
        "logs/plot_divergence.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        library=library_fingerprint("plot_divergence"),
    script:
        "../scripts/plot_divergence.py"


rule plot_decisiveness:
    input:
        unpack(get_table2_inputs),
    output:
        png=report(
            "results/plots/decisiveness_vs_agreement.png",
            caption="../report/plot_decisiveness.rst",
            category="Plots",
            labels={"figure": "Decisiveness vs. annotator agreement"},
        ),
        pdf="results/plots/decisiveness_vs_agreement.pdf",
    log:
        "logs/plot_decisiveness.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        runs=get_table2_runs(),
        test_datasets=list(get_table2_tests()),
        seed=config["evaluation"]["seed"],
        library=library_fingerprint("plot_decisiveness"),
    script:
        "../scripts/plot_decisiveness.py"


# snakemake's HTML report does not show the config: a snapshot of it is a report() output.
rule config_snapshot:
    output:
        yaml="results/report/config_used.yaml",
        html=report(
            "results/report/config_used.html",
            caption="../report/config.rst",
            category="Configuration",
            labels={"file": "merged config"},
        ),
    log:
        "logs/config_snapshot.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        config=config,
        library=library_fingerprint("config_snapshot"),
    script:
        "../scripts/config_snapshot.py"


# Off-the-shelf reward models (`method: pretrained`): no training, the test and dev pairs scored directly.
rule score_pretrained:
    input:
        test="results/{dataset}/test.parquet",
        pairs="results/{dataset}/pairs.parquet",
        splits="results/{dataset}/splits.parquet",
        backbone=get_pretrained_backbone,
    output:
        scores=f"results/scores/{{dataset}}/{{condition}}/seed{PRETRAINED_SEED}.parquet",
        dev_scores=f"results/scores_dev/{{dataset}}/{{condition}}/seed{PRETRAINED_SEED}.parquet",
    log:
        "logs/score_pretrained/{dataset}/{condition}.log",
    benchmark:
        "benchmarks/score_pretrained/{dataset}/{condition}.tsv"
    wildcard_constraints:
        condition=_alternatives(PRETRAINED_CONDITIONS),
    conda:
        TRAIN_ENV
    threads: 2
    resources:
        # An off-the-shelf reward model on `model.gpus` GPUs (default 1): a 27B model in 8 bits
        # (Skywork-Reward-Gemma-2-27B) needs about 30 GB of GPU memory, a 70B one (Nemotron-70B) about 70 GB;
        # from_pretrained holds shards in host memory while quantizing.
        **gpu_job_resources(
            get_pretrained_gpus,
            cpus_per_gpu=4,
            mem_mb=lambda wildcards, attempt: 96000 * attempt,
            runtime_per_attempt=240,
        ),
    params:
        model=get_pretrained_model,
        max_length=get_pretrained_max_length,
        batch_size=config["evaluation"]["batch_size"],
        library=library_fingerprint("score_pretrained"),
    script:
        "../scripts/score_pretrained.py"
