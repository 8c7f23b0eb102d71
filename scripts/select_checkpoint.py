"""Rule select_checkpoint: pick the best dev evaluation, write best.json and export its PEFT adapter."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json
from pathlib import Path

from divpref.common.atomic_io import atomic_path
from divpref.training.selection import base_model_reference, best_record, export_adapter


def main(smk) -> None:
    train_log = json.loads(Path(smk.input.train_log).read_text())
    best = best_record(train_log, source=smk.input.train_log)
    print(f"selected step {best['step']} (epoch {best['epoch']:.2f}): {best['metric']} = {best['value']}")
    base_model, revision = base_model_reference(smk.params.base_model, train_log["base_model"])
    with atomic_path(smk.output.adapter) as tmp:
        export_adapter(
            best["checkpoint"],
            train_log["tokenizer_dir"],
            tmp,
            train_log["head_outputs"],
            train_log["pad_token_id"],
            train_log.get("compute_dtype", "float32"),  # scoring runs at the precision dev evaluation ran at
            base_model=base_model,  # as configured (a hub id), never the download folder training loaded
            revision=revision,
        )
    with atomic_path(smk.output.best) as tmp:
        tmp.write_text(json.dumps(best, indent=2) + "\n")


main(snakemake)
