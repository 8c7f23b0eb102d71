"""Rule flag_pairs: read and check one configured pair file (flag.sets) into pair_id + texts."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

from divpref.common.atomic_io import atomic_path
from divpref.flagging.flags import read_pair_file


def main(smk) -> None:
    pairs = read_pair_file(smk.input.pairs)
    with atomic_path(smk.output.pairs) as tmp:
        pairs.write_parquet(tmp)
    print(f"{smk.input.pairs}: {pairs.height} pairs")


main(snakemake)
