"""Rule share_adapter: the selected adapter copied with its hub model card (README.md)."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.models.loading import HEAD_INFO_FILE
from divpref.sharing.cards import base_model_license, card_text, table_rows, write_shareable


def read_rows(path) -> list[dict]:
    return pl.read_csv(path, infer_schema=False).to_dicts() if path else []


def main(smk) -> None:
    adapter = Path(smk.input.adapter)
    train_log = json.loads(Path(smk.input.train_log).read_text())
    run = dict(smk.params.run)
    results = table_rows(read_rows(smk.input.get("table2")), read_rows(smk.input.get("detection")), run)
    card = card_text(
        run=run,
        best=json.loads(Path(smk.input.best).read_text()),
        train_log=train_log,
        adapter_config=json.loads((adapter / "adapter_config.json").read_text()),
        head=json.loads((adapter / HEAD_INFO_FILE).read_text()),
        dataset_ref=smk.params.dataset["reference"],
        dataset_revision=smk.params.dataset["revision"],
        license_name=base_model_license(train_log["base_model"]),
        results=results,
        load_path=smk.params.load_path,
    )
    print(f"model card with {len(results)} test-result rows")
    with atomic_path(smk.output.folder) as tmp:
        write_shareable(adapter, tmp, card)


main(snakemake)
