"""Rule flag: divergence score and flag of every pair of one configured set, and the record beside it."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json
from pathlib import Path

import polars as pl

from divpref.common.atomic_io import atomic_path
from divpref.flagging.flags import flag_scores, labelled_evaluation


def main(smk) -> None:
    record = json.loads(Path(smk.input.threshold).read_text())
    set_pairs = pl.read_parquet(smk.input.pairs)
    scores = pl.read_parquet(smk.input.scores)
    if scores["pair_id"].to_list() != set_pairs["pair_id"].to_list():
        raise ValueError(f"{smk.input.scores}: does not score the pairs of {smk.input.pairs} in order")
    flags = flag_scores(record, scores, smk.input.scores)
    summary = {
        "set": smk.wildcards.flag_set,
        "file": smk.params.path,
        "n_pairs": flags.height,
        "n_flagged": int(flags["flagged"].sum()),
        # Rule flag_clean writes exactly the unflagged rows and refuses any other count.
        "clean_file": smk.params.clean_file,
        "n_clean": int((~flags["flagged"]).sum()),
        **record,
        "labelled_test_pairs": labelled_evaluation(flags, set_pairs, pl.read_parquet(smk.input.test)),
    }
    text = json.dumps(summary, indent=2) + "\n"
    with atomic_path(smk.output.flags) as flags_tmp, atomic_path(smk.output.summary) as summary_tmp:
        flags.write_parquet(flags_tmp)
        summary_tmp.write_text(text)
    print(text)


main(snakemake)
