"""Rule score_pretrained: an off-the-shelf reward model's scores for a dataset's test and dev pairs."""

import os

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers loads: hub models are downloaded first

import polars as pl
import torch

from divpref.common.atomic_io import atomic_path
from divpref.common.devices import compute_device, require_visible_gpus
from divpref.common.gpu_request import requested_gpus
from divpref.data.splits import rows_of_split
from divpref.evaluation.scoring import check_test_pairs
from divpref.models.pretrained import load_pretrained, reward_kind, score_pairs


def main(smk) -> None:
    test = pl.read_parquet(smk.input.test)
    dev = rows_of_split(pl.read_parquet(smk.input.pairs), pl.read_parquet(smk.input.splits), "dev")
    check_test_pairs(test, smk.input.test)
    check_test_pairs(dev, f"{smk.input.pairs} (dev split of {smk.input.splits})")
    require_visible_gpus(requested_gpus(smk.resources))  # a GPU job without a visible GPU fails at once
    device = compute_device()
    torch.set_num_threads(max(1, int(smk.threads)))
    model_cfg = dict(smk.params.model)
    model, tokenizer = load_pretrained(model_cfg, device)
    options = {
        "max_length": int(smk.params.max_length),
        "batch_size": int(smk.params.batch_size),
        "device": device,
        "reward_from": reward_kind(model_cfg),
        "token_index": int(model_cfg.get("token_index", 0)),
    }
    scores = {
        part: score_pairs(model, tokenizer, pairs, **options)
        for part, pairs in (("test", test), ("dev", dev))
    }
    with atomic_path(smk.output.scores) as test_tmp, atomic_path(smk.output.dev_scores) as dev_tmp:
        scores["test"].write_parquet(test_tmp)
        scores["dev"].write_parquet(dev_tmp)


main(snakemake)
