# Helpers of rules/taxonomy.smk (input functions, params, target lists); included by rules/common.smk.


def filled_sheets(dataset):
    """Filled annotation sheets of a dataset (config taxonomy.filled_sheets), one per annotator."""
    return lookup(dpath=f"taxonomy/filled_sheets/{dataset}", within=config, default=[])


def get_filled_sheets(wildcards):
    return filled_sheets(wildcards.dataset)


def get_taxonomy_outputs():
    """Sheets for every dataset; agreement where at least two filled sheets are configured."""
    targets = []
    for dataset in DATASETS:
        targets += [f"results/taxonomy/{dataset}_sheet.csv"]
        targets += [f"results/taxonomy/{dataset}_instructions.md"]
        if len(filled_sheets(dataset)) >= 2:
            targets += [f"results/taxonomy/{dataset}_agreement.json"]
            targets += [f"results/taxonomy/{dataset}_cause_frequencies.csv"]
    return targets
