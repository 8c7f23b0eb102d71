# Training stage: the backbone (built offline for the demo/CI, or downloaded once from the hub), a short check
# of the training hardware (gpu_check), then one reward model per (dataset, condition, seed).
# Checkpoints go to checkpoints/ (not a declared output), so a failed or killed job resumes on rerun.


rule build_backbone:
    output:
        directory("resources/backbones/{backbone}"),
    log:
        "logs/build_backbone/{backbone}.log",
    conda:
        TRAIN_ENV
    params:
        build=get_backbone_build,
        library=library_fingerprint("build_backbone"),
    script:
        "../scripts/build_backbone.py"


rule download_backbone:
    output:
        folder=directory("resources/models/{model_dir}"),
    log:
        "logs/download_backbone/{model_dir}.log",
    # Every configured hub model (the backbone, pretrained conditions' models, judges), once each. Compute nodes
    # often have no internet; the login node does. Train, score, score_pretrained and judge jobs run with the
    # hub offline and load this folder.
    localrule: True
    conda:
        "../envs/data.yaml"
    params:
        repo_id=lambda wildcards: downloaded_model_dir(wildcards)["repo_id"],
        revision=lambda wildcards: downloaded_model_dir(wildcards)["revision"],
        library=library_fingerprint("download_backbone"),
    script:
        "../scripts/download_backbone.py"


rule gpu_check:
    input:
        trainsets=get_grid_trainsets,
        backbone=get_backbone_input,
    output:
        check=GPU_CHECK_FILE,
    log:
        "logs/gpu_check.log",
    benchmark:
        "benchmarks/gpu_check.tsv"
    conda:
        TRAIN_ENV
    # As a training job: training.data_parallel processes' GPUs on one node (profiles/slurm); minutes.
    threads: lambda wildcards: int(config["training"].get("data_parallel", 1))
    resources:
        gpu=0,
        cpus_per_gpu=4,
        mem_mb=lambda wildcards, attempt: 32000 * attempt,
        runtime=60,
    params:
        model=get_train_model,
        training=get_gpu_check_training,
        runs=get_gpu_check_runs,
        library=library_fingerprint("gpu_check"),
    script:
        "../scripts/gpu_check.py"


rule train:
    input:
        unpack(get_trainset),
        backbone=get_backbone_input,
        method_modules=get_method_modules,
        gpu_check=get_gpu_check_input,
    output:
        train_log="results/train/{dataset}/{condition}/seed{seed}/train_log.json",
    log:
        "logs/train/{dataset}/{condition}/seed{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/{condition}/seed{seed}.tsv"
    conda:
        TRAIN_ENV
    # One thread per training process (training.data_parallel processes): on small CPU hosts two
    # single-thread jobs beat one two-thread job, and torch's thread spin-waits make a shared CPU up to 15x
    # slower (measured). profiles/slurm asks for `threads` GPUs, one per process.
    threads: get_data_parallel
    resources:
        # No GPU unless a profile asks for one (profiles/slurm sets gpu="threads" for this rule).
        gpu=0,
        cpus_per_gpu=lambda wildcards, attempt: 4 * attempt,
        mem_mb=lambda wildcards, attempt: 32000 * attempt,
        runtime=lambda wildcards, attempt: 720 * attempt,
        # Each retry halves training.micro_batch_size (batch_size stays): a CUDA out-of-memory error
        # cannot be fixed by more host memory. Checkpoints do not depend on it, so the retry resumes.
        micro_batch_halvings=lambda wildcards, attempt: attempt - 1,
    params:
        method=condition_method,
        method_modules=get_method_modules,
        method_settings=get_method_settings,
        model=get_train_model,
        training=get_training_params,
        checkpoint_root=get_checkpoint_root,
        library=library_fingerprint("train"),
    script:
        "../scripts/train.py"
