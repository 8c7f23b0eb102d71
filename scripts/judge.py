"""Rule judge: one causal LM's verdicts on every test pair of a dataset, in both orders.

See divpref.judge.verdicts.
"""

import os

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before transformers loads: hub models are downloaded first

import polars as pl
import torch

from divpref.common.atomic_io import atomic_path
from divpref.common.devices import compute_device, require_visible_gpus
from divpref.common.gpu_request import requested_gpus
from divpref.evaluation.scoring import check_test_pairs
from divpref.judge.verdicts import judge_pairs, load_judge, load_judge_tokenizer
from divpref.judge.vllm_backend import choose_backend, judge_pairs_vllm


def main(smk) -> None:
    test = pl.read_parquet(smk.input.test)
    check_test_pairs(test, smk.input.test)
    require_visible_gpus(requested_gpus(smk.resources))  # a GPU job without a GPU fails at once
    device = compute_device()
    torch.set_num_threads(max(1, int(smk.threads)))
    max_length = int(smk.params.max_length)
    backend = choose_backend(smk.params.judge, device)
    name = smk.params.judge["name_or_path"]
    print(f"judge {smk.wildcards.judge} ({name}): backend {backend}, device {device}")
    if backend == "vllm":
        tokenizer = load_judge_tokenizer(smk.params.judge)
        verdicts = judge_pairs_vllm(smk.params.judge, tokenizer, test, max_length=max_length)
    else:
        model, tokenizer = load_judge(smk.params.judge, device)
        verdicts = judge_pairs(
            model,
            tokenizer,
            test,
            max_length=max_length,
            batch_size=int(smk.params.batch_size),
            device=device,
        )
    with atomic_path(smk.output.verdicts) as tmp:
        verdicts.write_parquet(tmp)
    consistency = verdicts["order_consistent"].mean()
    print(verdicts["verdict"].value_counts(sort=True), f"order-consistent: {consistency:.3f}")


main(snakemake)
