"""Rule judge: one causal LM's verdicts on every test pair of a dataset, in both orders (see divpref.judge.verdicts)."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

import polars as pl  # noqa: E402
import torch  # noqa: E402

from divpref.common.atomic_io import atomic_path  # noqa: E402
from divpref.common.devices import compute_device, require_visible_gpus  # noqa: E402
from divpref.evaluation.scoring import check_test_pairs  # noqa: E402
from divpref.judge.verdicts import judge_pairs, load_judge, load_judge_tokenizer  # noqa: E402
from divpref.judge.vllm_backend import choose_backend, judge_pairs_vllm  # noqa: E402


def main(smk) -> None:
    test = pl.read_parquet(smk.input.test)
    check_test_pairs(test, smk.input.test)
    require_visible_gpus(int(smk.resources.get("gpu", 0) or 0))  # a GPU job without a GPU fails at once
    device = compute_device()
    torch.set_num_threads(max(1, int(smk.threads)))
    max_length = int(smk.params.max_length)
    backend = choose_backend(smk.params.judge, device)
    print(
        f"judge {smk.wildcards.judge} ({smk.params.judge['name_or_path']}): backend {backend}, device {device}"
    )
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


main(snakemake)  # noqa: F821
