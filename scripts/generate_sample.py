"""Rule generate_sample: the embedded synthetic MultiPref and HelpSteer2 samples and their planted truth."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import logging

from divpref.synthetic.sample import write_sample


def main(smk) -> None:
    for dataset in ("multipref", "helpsteer2"):
        tables = write_sample(
            dataset,
            n_pairs=int(smk.params.n_pairs[dataset]),
            seed=int(smk.params.seed),
            records_path=smk.output[dataset],
            truth_path=smk.output[f"truth_{dataset}"],
        )
        logging.info("%s: %d records, %d pairs", dataset, len(tables.records), len(tables.truth))


main(snakemake)
