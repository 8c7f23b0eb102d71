# LLM-as-judge (the full paper): every configured causal LM judges every test pair of every dataset, in both
# orders, from the next-token probabilities of the option labels; then the winner-rate table and its plot, and
# what the judges and the reward models favour (length, formatting, compliance) with its plot.


rule judge:
    input:
        test="results/{dataset}/test.parquet",
        model=get_judge_model_input,
    output:
        verdicts="results/judge/{dataset}/{judge}.parquet",
    log:
        "logs/judge/{dataset}/{judge}.log",
    benchmark:
        "benchmarks/judge/{dataset}/{judge}.tsv"
    conda:
        TRAIN_ENV
    threads: 2
    resources:
        # A causal LM judging every test pair twice (a bf16 8B model: about 16 GB of GPU memory).
        **gpu_job_resources(
            1,
            cpus_per_gpu=4,
            mem_mb=lambda wildcards, attempt: 48000 * attempt,
            runtime_per_attempt=180,
        ),
    params:
        judge=get_judge_config,
        max_length=lookup(
            dpath="evaluation/judge_max_length", within=config, default=4096
        ),
        batch_size=config["evaluation"]["batch_size"],
        library=library_fingerprint("judge"),
    script:
        "../scripts/judge.py"


rule judge_table:
    input:
        unpack(get_judge_table_inputs),
    output:
        csv=report(
            "results/tables/judge.csv",
            caption="../report/judge.rst",
            category="LLM-as-judge",
            labels={"table": "Winner rate by agreement subset (CSV)"},
        ),
        md="results/tables/judge.md",
    log:
        "logs/judge_table.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        runs=judge_runs(),
        test_datasets=judge_datasets(),
        evaluation=config["evaluation"],
        flag_dataset=lookup(dpath="flag/dataset", within=config, default=None),
        library=library_fingerprint("judge_table"),
    script:
        "../scripts/judge_table.py"


rule plot_judge:
    input:
        csv="results/tables/judge.csv",
    output:
        png=report(
            "results/plots/judge_winner_rate.png",
            caption="../report/plot_judge.rst",
            category="LLM-as-judge",
            labels={"figure": "Winner rate by agreement subset"},
        ),
        pdf="results/plots/judge_winner_rate.pdf",
    log:
        "logs/plot_judge.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        library=library_fingerprint("plot_judge"),
    script:
        "../scripts/plot_judge.py"


rule judge_bias:
    input:
        unpack(get_judge_bias_inputs),
    output:
        csv=report(
            "results/tables/judge_bias.csv",
            caption="../report/judge_bias_csv.rst",
            category="LLM-as-judge",
            labels={"table": "What judges and reward models favour (CSV)"},
        ),
    log:
        "logs/judge_bias.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        runs=judge_bias_runs(),
        test_datasets=judge_bias_datasets(),
        evaluation=config["evaluation"],
        flag_dataset=lookup(dpath="flag/dataset", within=config, default=None),
        library=library_fingerprint("judge_bias"),
    script:
        "../scripts/judge_bias.py"


rule plot_judge_bias:
    input:
        csv="results/tables/judge_bias.csv",
    output:
        png=report(
            "results/plots/judge_bias.png",
            caption="../report/plot_judge_bias.rst",
            category="LLM-as-judge",
            labels={"figure": "What judges and reward models favour"},
        ),
        pdf="results/plots/judge_bias.pdf",
    log:
        "logs/plot_judge_bias.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        library=library_fingerprint("plot_judge_bias"),
    script:
        "../scripts/plot_judge_bias.py"
