"""Names every stage shares: preference labels, methods, label schemes, agreement subsets, the pooled seed."""

ORDERED_LABELS = ("b_clearly", "b_slightly", "tie", "a_slightly", "a_clearly")
"""The five ordered preference labels; index ``i`` corresponds to signed strength ``i - 2``."""

BT, MSE, MEAN_VAR = "bt", "mse", "mean_var"
CLASSIFICATION, LIKERT_CLASSIFICATION = "classification", "likert_classification"
PRETRAINED = "pretrained"
"""``method: pretrained``: score with an existing reward model, no training (not a registered method)."""

BUILTIN_METHODS = (BT, MSE, MEAN_VAR, CLASSIFICATION, LIKERT_CLASSIFICATION)
"""The registered methods this package ships; ``method_modules`` may register more."""

DEV_SCORED_METHODS = (MEAN_VAR, CLASSIFICATION, LIKERT_CLASSIFICATION)
"""Methods whose dev-pair scores tune detection's divergence score (Mean-Var's lambda, a score choice)."""

METHOD_SETTINGS = {MEAN_VAR: ("rho", "objective")}
"""Condition keys that only some methods accept (see :mod:`divpref.models.method_options`)."""

LABEL_SCHEMES = ("agg", "all")
"""Label schemes of a trained condition: ``agg`` one majority label per pair, ``all`` every annotation."""

SUBSETS = ("high_agreement_pref", "high_agreement_tie", "diverging", "diverging_substantial", "all")
"""Agreement subsets of the test pairs that Table 2 and the plots report, in the paper's order."""

POOLED_SEED = "all"
"""The ``seed`` value of rows pooled over a condition's seeds (tables of Table 2 and detection)."""
