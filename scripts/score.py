"""Rule score: the selected model's scores for every test pair of a dataset."""

import os

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers loads: compute nodes have no internet

import json
from pathlib import Path

import polars as pl
import torch

from divpref.common.atomic_io import atomic_path
from divpref.common.devices import compute_device, require_visible_gpus
from divpref.common.gpu_request import requested_gpus
from divpref.evaluation.scoring import (
    check_test_pairs,
    inference_load_kwargs,
    score_test_pairs,
)
from divpref.models.loading import load_for_inference, scores_in_bf16
from divpref.models.methods import load_method_modules


def main(smk) -> None:
    load_method_modules(smk.params.method_modules)  # config `method_modules`
    test = pl.read_parquet(smk.input.test)
    check_test_pairs(test, smk.input.test)
    require_visible_gpus(requested_gpus(smk.resources))
    device = compute_device()
    torch.set_num_threads(max(1, int(smk.threads)))
    train_log = json.loads(Path(smk.input.train_log).read_text())
    model, tokenizer = load_for_inference(
        smk.input.adapter,
        device,
        base_model=train_log["base_model"],  # the folder training loaded (the adapter names the hub id)
        **inference_load_kwargs(smk.params.model, device),
    )
    scores = score_test_pairs(
        model,
        tokenizer,
        test,
        method=smk.params.method,
        max_length=int(smk.params.max_length),
        batch_size=int(smk.params.batch_size),
        device=device,
        method_options=train_log.get("method_options") or None,
        bf16=scores_in_bf16(smk.input.adapter),
    )
    with atomic_path(smk.output.scores) as tmp:
        scores.write_parquet(tmp)


main(snakemake)
