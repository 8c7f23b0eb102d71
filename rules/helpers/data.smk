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


def get_hub_params(wildcards):
    """repo_id, revision and filename of a dataset's hub file (checked against the requested file)."""
    hub = config["datasets"][wildcards.dataset]["hub"]
    if hub["filename"] != wildcards.hub_file:
        raise ValueError(
            f"config key datasets.{wildcards.dataset}.hub.filename is {hub['filename']!r}, "
            f"but {wildcards.hub_file!r} was requested"
        )
    return hub
