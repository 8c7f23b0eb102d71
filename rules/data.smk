# Data stage: raw annotations -> long table -> agreement categories -> splits -> training sets.


rule generate_sample:
    input:
        texts=os.path.relpath(LIBRARY / "synthetic" / "texts.json"),  # the sample's text: data, not code
    output:
        multipref="resources/sample/multipref.jsonl.gz",
        helpsteer2="resources/sample/helpsteer2.jsonl.gz",
        truth_multipref="resources/sample/truth_multipref.parquet",
        truth_helpsteer2="resources/sample/truth_helpsteer2.parquet",
    log:
        "logs/generate_sample/generate_sample.log",
    localrule: True
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job_resources(),
    params:
        seed=config["sample"]["seed"],
        n_pairs=config["sample"]["n_pairs"],
        library=library_fingerprint("generate_sample"),
    script:
        "../scripts/generate_sample.py"


rule download:
    output:
        raw="resources/hub/{dataset}/{hub_file}",
        provenance="resources/hub/{dataset}/{hub_file}.provenance.json",
    log:
        "logs/download/{dataset}/{hub_file}.log",
    benchmark:
        "benchmarks/download/{dataset}/{hub_file}.tsv"
    # Compute nodes often have no internet; the login node does.
    localrule: True
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job_resources(),
    params:
        hub=get_hub_params,
        library=library_fingerprint("download"),
    script:
        "../scripts/download.py"


rule normalize:
    input:
        raw=get_raw_annotations,
    output:
        annotations="results/{dataset}/annotations.parquet",
        rejects="results/{dataset}/rejects.csv",
        quality="results/{dataset}/data_quality.json",
    log:
        "logs/normalize/{dataset}.log",
    localrule: True
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job_resources(),
    params:
        helpsteer2_strength=config["divergence"]["helpsteer2_strength"],
        format=lambda wildcards: DATASET_FORMATS[wildcards.dataset],
        # What the DAG was planned with: a long file must then have (or lack) score columns.
        scores=lambda wildcards: wildcards.dataset in DATASETS_WITH_SCORES,
        min_annotators=get_min_annotators,
        library=library_fingerprint("normalize"),
    script:
        "../scripts/normalize.py"


rule classify:
    input:
        annotations="results/{dataset}/annotations.parquet",
    output:
        pairs="results/{dataset}/pairs.parquet",
        summary="results/{dataset}/divergence_summary.csv",
    log:
        "logs/classify/{dataset}.log",
    localrule: True
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job_resources(),
    params:
        chosen_tie_break=config["divergence"]["chosen_tie_break"],
        library=library_fingerprint("classify"),
    script:
        "../scripts/classify.py"


rule split:
    input:
        pairs="results/{dataset}/pairs.parquet",
    output:
        splits="results/{dataset}/splits.parquet",
        test="results/{dataset}/test.parquet",
        summary="results/{dataset}/split_summary.json",
    log:
        "logs/split/{dataset}.log",
    localrule: True
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job_resources(),
    params:
        seed=config["splits"]["seed"],
        test_size=get_test_size,
        dev_size=config["splits"]["dev_size"],
        group_by=config["splits"].get("group_by", "prompt"),
        library=library_fingerprint("split"),
    script:
        "../scripts/split.py"


rule trainset:
    input:
        pairs="results/{dataset}/pairs.parquet",
        annotations="results/{dataset}/annotations.parquet",
        splits="results/{dataset}/splits.parquet",
    output:
        train="results/{dataset}/trainsets/{method}-{labels}/train.parquet",
        dev="results/{dataset}/trainsets/{method}-{labels}/dev.parquet",
    log:
        "logs/trainset/{dataset}/{method}-{labels}.log",
    localrule: True
    conda:
        "../envs/data.yaml"
    resources:
        **cpu_job_resources(),
    params:
        no_majority=config["divergence"]["agg_no_majority"],
        layout=get_trainset_layout,
        library=library_fingerprint("trainset"),
    script:
        "../scripts/trainset.py"
