"""Rule train: fit one reward model (resuming from its latest checkpoint) and write the training log."""

import json

import polars as pl
import torch
from divpref.io_utils import atomic_path
from divpref.logutil import log_to_file
from divpref.method_options import resolve
from divpref.methods import get_method, load_method_modules
from divpref.training import TrainingParams, train_reward_model

log_to_file(snakemake.log[0])  # noqa: F821 - injected by snakemake
torch.set_num_threads(snakemake.threads)  # noqa: F821
load_method_modules(snakemake.params.method_modules)  # noqa: F821 - config `method_modules`

settings = dict(snakemake.params.method_settings)  # noqa: F821
train_table = pl.read_parquet(snakemake.input.train) if settings else None  # noqa: F821
options = resolve(snakemake.params.method, settings, train_table)  # noqa: F821
result = train_reward_model(
    train_path=snakemake.input.train,  # noqa: F821
    dev_path=snakemake.input.dev,  # noqa: F821
    method=get_method(snakemake.params.method, options),  # noqa: F821
    model_cfg=dict(snakemake.params.model),  # noqa: F821
    params=TrainingParams.from_mapping(snakemake.params.training),  # noqa: F821
    checkpoint_root=snakemake.params.checkpoint_root,  # noqa: F821
)
result["method_options"] = options
with atomic_path(snakemake.output.train_log) as tmp:  # noqa: F821
    tmp.write_text(json.dumps(result, indent=2) + "\n")
