# Helpers of rules/data.smk (input functions, params, target lists); included by rules/common.smk.

# The configured hub file names, so the download rule's `{hub_file}` wildcard matches nothing else.
HUB_FILES = sorted(
    {spec["hub"]["filename"] for spec in config["datasets"].values() if "hub" in spec}
)


wildcard_constraints:
    hub_file="|".join(map(re.escape, HUB_FILES)),


def get_raw_annotations(wildcards):
    """Raw file of a dataset: resources/hub/<dataset>/<filename> for `source: hub`, else the local path.

    A relative local path stays relative, so snakemake resolves it against the working directory.
    """
    spec = config["datasets"][wildcards.dataset]
    if spec["source"] == "hub":
        if "hub" not in spec:
            raise ValueError(
                f"config key datasets.{wildcards.dataset}.hub: required with `source: hub`"
            )
        return f"resources/hub/{wildcards.dataset}/{spec['hub']['filename']}"
    return os.path.expanduser(spec["source"])


def get_min_annotators(wildcards):
    """`divergence.min_annotators` for this dataset (one value for all, or a per-dataset mapping)."""
    setting = config["divergence"].get("min_annotators")
    if isinstance(setting, dict):
        return setting.get(wildcards.dataset)
    return setting


def test_size_of(dataset):
    """`splits.test_size` of `dataset`: one number for every dataset, or a mapping dataset -> number."""
    setting = config["splits"]["test_size"]
    if not isinstance(setting, dict):
        return setting
    if dataset not in setting:
        raise ValueError(
            f"config key splits.test_size: no test size for dataset {dataset!r} (the mapping names "
            f"{sorted(setting)}); add `{dataset}: <pairs>` to it, or give one number for every dataset"
        )
    return setting[dataset]


def _check_test_sizes():
    """Every configured dataset has a test size; a mapping names configured datasets only."""
    setting = config["splits"]["test_size"]
    for dataset in DATASETS:
        test_size_of(dataset)
    for dataset in setting if isinstance(setting, dict) else ():
        if dataset not in DATASETS:
            raise ValueError(
                f"config key splits.test_size.{dataset}: unknown dataset {dataset!r} (configured: {DATASETS})"
            )


_check_test_sizes()


def get_test_size(wildcards):
    """`splits.test_size` for this dataset (rule split)."""
    return test_size_of(wildcards.dataset)


def get_hub_params(wildcards):
    """repo_id, revision and filename of a dataset's hub file (checked against the requested file)."""
    hub = config["datasets"][wildcards.dataset]["hub"]
    if hub["filename"] != wildcards.hub_file:
        raise ValueError(
            f"config key datasets.{wildcards.dataset}.hub.filename is {hub['filename']!r}, "
            f"but {wildcards.hub_file!r} was requested"
        )
    return hub
