# Shareable adapters: each selected adapter copied with a hub model card (README.md) that reports its test
# results, so no rule writes into another rule's output; and the optional target `push` (not a default target).


rule share_adapter:
    input:
        unpack(get_share_inputs),
    output:
        folder=directory(SHARE_FOLDER),
    log:
        "logs/share_adapter/{dataset}/{condition}/seed{seed}.log",
    localrule: True
    conda:
        TRAIN_ENV
    resources:
        **cpu_job_resources(),
    params:
        run=get_share_run,
        dataset=get_share_dataset,
        load_path=get_share_load_path,
        library=library_fingerprint("share_adapter"),
    script:
        "../scripts/share_adapter.py"


# Uploads need the internet: a local rule (the submit node has it). `snakemake push` without `hub:` fails.
rule push:
    input:
        folders=get_share_outputs(),
    output:
        record="results/share/pushed.json",
    log:
        "logs/push.log",
    localrule: True
    conda:
        TRAIN_ENV
    resources:
        **cpu_job_resources(),
    params:
        hub=get_push_hub,
        runs=get_curve_runs(),
    script:
        "../scripts/push.py"
