# Helpers of rules/select.smk (input functions, params, target lists); included by rules/common.smk.


def get_curve_runs():
    """Every training run as {dataset, condition, method, seed} (its best.json: input `best`, same order)."""
    return [
        {
            "dataset": dataset,
            "condition": condition,
            "method": CONDITIONS[condition]["method"],
            "seed": seed,
        }
        for dataset, condition, seed in training_runs()
    ]


def get_selection_outputs():
    """best.json of every run and the training-curve figure."""
    targets = expand_runs("results/models/{dataset}/{condition}/seed{seed}/best.json")
    return targets + [f"results/plots/training_curves.{ext}" for ext in ("png", "pdf")]
