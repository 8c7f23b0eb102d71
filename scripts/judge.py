"""Rule judge: one causal LM's verdicts on every test pair of a dataset, in both orders (see divpref.judge)."""

from divpref.logutil import log_to_file

log_to_file(snakemake.log[0])  # noqa: F821

import polars as pl  # noqa: E402
import torch  # noqa: E402

from divpref.io_utils import atomic_path  # noqa: E402
from divpref.judge import judge_pairs, load_judge  # noqa: E402
from divpref.scoring import check_test_pairs, inference_device  # noqa: E402


def main(smk) -> None:
    test = pl.read_parquet(smk.input.test)
    check_test_pairs(test, smk.input.test)
    device = inference_device()
    torch.set_num_threads(max(1, int(smk.threads)))
    model, tokenizer = load_judge(smk.params.judge, device)
    verdicts = judge_pairs(
        model,
        tokenizer,
        test,
        max_length=int(smk.params.max_length),
        batch_size=int(smk.params.batch_size),
        device=device,
    )
    with atomic_path(smk.output.verdicts) as tmp:
        verdicts.write_parquet(tmp)
    print(
        verdicts["verdict"].value_counts(sort=True),
        f"order-consistent: {verdicts['order_consistent'].mean():.3f}",
    )


main(snakemake)  # noqa: F821
