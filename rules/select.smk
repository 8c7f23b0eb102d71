# Checkpoint selection: the best dev evaluation of a training run, exported as a PEFT adapter folder.


rule select_checkpoint:
    input:
        train_log="results/train/{dataset}/{condition}/seed{seed}/train_log.json",
    output:
        best="results/models/{dataset}/{condition}/seed{seed}/best.json",
        adapter=directory("results/models/{dataset}/{condition}/seed{seed}/adapter"),
    log:
        "logs/select_checkpoint/{dataset}/{condition}/seed{seed}.log",
    localrule: True
    conda:
        TRAIN_ENV
    resources:
        **cpu_job_resources(),
    params:
        base_model=config["model"]["name_or_path"],
        library=library_fingerprint("select_checkpoint"),
    script:
        "../scripts/select_checkpoint.py"


rule plot_training_curves:
    input:
        best=expand_runs("results/models/{dataset}/{condition}/seed{seed}/best.json"),
    output:
        png=report(
            "results/plots/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            labels={"figure": "dev selection metric per evaluation"},
        ),
        pdf="results/plots/training_curves.pdf",
    log:
        "logs/plot_training_curves.log",
    localrule: True
    conda:
        "../envs/evaluate.yaml"
    resources:
        **cpu_job_resources(),
    params:
        runs=get_curve_runs(),
        library=library_fingerprint("plot_training_curves"),
    script:
        "../scripts/plot_training_curves.py"
