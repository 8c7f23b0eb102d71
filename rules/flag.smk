# Flagging contested pairs (the full paper's mitigation): the flag condition's selected model scores every pair of
# each configured pair file through the test-scoring script; a dev-chosen threshold on the divergence score flags.
# Each set's unflagged rows are written in its own format; the flag dataset's test set, before and after.


rule flag_threshold:
    input:
        unpack(get_flag_threshold_inputs),
    output:
        threshold=FLAG_THRESHOLD,
    log:
        "logs/flag_threshold.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        model=get_flag_model,
        lambda_grid=config["detection"]["lambda_grid"],
        classification_score=config["detection"].get(
            "classification_score", "extreme_joint"
        ),
        library=library_fingerprint("flag_threshold"),
    script:
        "../scripts/flag_threshold.py"


rule flag_pairs:
    input:
        pairs=get_flag_set_path,
    output:
        pairs="results/flag_sets/{flag_set}/pairs.parquet",
    log:
        "logs/flag_pairs/{flag_set}.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        path=lambda wildcards: FLAG_SETS[wildcards.flag_set],
        library=library_fingerprint("flag_pairs"),
    script:
        "../scripts/flag_pairs.py"


rule flag_score:
    input:
        test="results/flag_sets/{flag_set}/pairs.parquet",
        adapter=get_flag_adapter,
        train_log=get_flag_train_log,
        method_modules=get_flag_method_modules,
    output:
        scores="results/flag_sets/{flag_set}/scores.parquet",
    log:
        "logs/flag_score/{flag_set}.log",
    benchmark:
        "benchmarks/flag_score/{flag_set}.tsv"
    conda:
        TRAIN_ENV
    threads: 1  # as rule score
    resources:
        # As rule score: one GPU.
        **gpu_job_resources(
            1,
            cpus_per_gpu=4,
            mem_mb=lambda wildcards, attempt: 32000 * attempt,
            runtime_per_attempt=120,
        ),
    params:
        method=get_flag_method,
        method_modules=get_flag_method_modules,
        model=config["model"],
        max_length=get_flag_max_length,
        batch_size=config["evaluation"]["batch_size"],
        library=library_fingerprint("score"),
    script:
        "../scripts/score.py"


rule flag:
    input:
        pairs="results/flag_sets/{flag_set}/pairs.parquet",
        scores="results/flag_sets/{flag_set}/scores.parquet",
        threshold=FLAG_THRESHOLD,
        test=get_flag_test_pairs,
    output:
        flags="results/flags/{flag_set}.parquet",
        summary="results/flags/{flag_set}.json",
    log:
        "logs/flag/{flag_set}.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        path=lambda wildcards: FLAG_SETS[wildcards.flag_set],
        clean_file=lambda wildcards: flag_clean_file(wildcards.flag_set),
        library=library_fingerprint("flag"),
    script:
        "../scripts/flag.py"


rule flag_clean:
    input:
        pairs=get_flag_set_path,
        flags="results/flags/{flag_set}.parquet",
        summary="results/flags/{flag_set}.json",
    output:
        clean="results/flags/{flag_set}.clean.{ext}",
    log:
        "logs/flag_clean/{flag_set}.{ext}.log",
    wildcard_constraints:
        ext="jsonl|parquet|csv",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        library=library_fingerprint("flag_clean"),
    script:
        "../scripts/flag_clean.py"


rule mitigation_table:
    input:
        unpack(get_mitigation_inputs),
    output:
        md=report(
            "results/tables/mitigation.md",
            caption="../report/mitigation.rst",
            category="Flagging",
            labels={"table": "Before and after removing flagged pairs"},
        ),
    log:
        "logs/mitigation_table.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        dataset=lookup(dpath="flag/dataset", within=config, default=None),
        evaluation=config["evaluation"],
        library=library_fingerprint("mitigation_table"),
    script:
        "../scripts/mitigation_table.py"
