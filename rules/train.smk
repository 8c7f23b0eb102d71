# Training stage: the offline demo/CI backbone, then one reward model per (dataset, condition, seed).
# Checkpoints go to checkpoints/ (not a declared output), so a failed or killed job resumes on rerun.


rule build_backbone:
    input:
        code=library_code("build_backbone"),
    output:
        directory("resources/backbones/{backbone}"),
    log:
        "logs/build_backbone/{backbone}.log",
    conda:
        "../envs/train.yaml"
    params:
        build=get_backbone_build,
    script:
        "../scripts/build_backbone.py"


rule train:
    input:
        unpack(get_trainset),
        backbone=get_backbone_input,
        code=library_code("train"),
        method_modules=get_method_modules,
    output:
        train_log="results/train/{dataset}/{condition}/seed{seed}/train_log.json",
    log:
        "logs/train/{dataset}/{condition}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/{condition}/seed{seed}.tsv"
    conda:
        "../envs/train.yaml"
    # One thread per job: on small CPU hosts two single-thread jobs beat one two-thread job, and torch's
    # thread spin-waits make a shared CPU up to 15x slower (measured). Profiles may raise it.
    threads: 1
    resources:
        # No GPU unless a profile asks for one (profiles/slurm sets gpu=1 for this rule).
        gpu=0,
        cpus_per_gpu=lambda wildcards, attempt: 4 * attempt,
        mem_mb=lambda wildcards, attempt: 32000 * attempt,
        runtime=lambda wildcards, attempt: 720 * attempt,
    params:
        method=condition_method,
        method_modules=get_method_modules,
        method_settings=get_method_settings,
        model=config["model"],
        training=get_training_params,
        checkpoint_root=get_checkpoint_root,
    script:
        "../scripts/train.py"
