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
    params:
        library=library_fingerprint("select_checkpoint"),
    script:
        "../scripts/select_checkpoint.py"
