# Training stage: the backbone (built offline for the demo/CI, or downloaded once from the hub), a short check
# of the training hardware (gpu_check), then one reward model per (dataset, condition, seed).
# Checkpoints go to checkpoints/ (not a declared output), so a failed or killed job resumes on rerun; the
# tracker's files (results/train/.../tensorboard/) are written live and are not declared either.


rule build_backbone:
    output:
        directory("resources/backbones/{backbone}"),
    log:
        "logs/build_backbone/{backbone}.log",
    conda:
        TRAIN_ENV
    resources:
        **cpu_job_resources(),
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
    resources:
        **cpu_job_resources(),
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
    # As a training job (training.data_parallel processes, a GPU each on one node), for minutes.
    threads: get_gpu_check_processes
    resources:
        **gpu_job_resources(
            get_gpu_check_processes,
            cpus_per_gpu=8,
            mem_mb=lambda wildcards: 64000 * get_gpu_check_processes(wildcards),
            runtime_per_attempt=60,
        ),
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
    # slower (measured). On a cluster each process gets a GPU (train_job_resources).
    threads: get_data_parallel
    resources:
        # config `cluster:` (site.yaml) gives the partition, the GPUs and the site's time limit.
        **train_job_resources(),
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
