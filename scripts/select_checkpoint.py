"""Rule select_checkpoint: pick the best dev evaluation, write best.json and export its PEFT adapter."""

import json
from pathlib import Path

from divpref.common.atomic_io import atomic_path
from divpref.common.job_log import log_to_file
from divpref.training.selection import best_record, export_adapter

log_to_file(snakemake.log[0])  # noqa: F821 - injected by snakemake

train_log = json.loads(Path(snakemake.input.train_log).read_text())  # noqa: F821
best = best_record(train_log, source=snakemake.input.train_log)  # noqa: F821
print(f"selected step {best['step']} (epoch {best['epoch']:.2f}): {best['metric']} = {best['value']}")
with atomic_path(snakemake.output.adapter) as tmp:  # noqa: F821
    export_adapter(
        best["checkpoint"],
        train_log["tokenizer_dir"],
        tmp,
        train_log["head_outputs"],
        train_log["pad_token_id"],
        train_log.get("compute_dtype", "float32"),  # scoring runs at the precision dev evaluation ran at
    )
with atomic_path(snakemake.output.best) as tmp:  # noqa: F821
    tmp.write_text(json.dumps(best, indent=2) + "\n")
