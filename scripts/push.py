"""Rule push: upload every shareable adapter folder (adapter + model card) to the hub (config `hub`)."""

from divpref.common.job_log import log_to_file

log_to_file(snakemake.log[0])

import json

from divpref.common.atomic_io import atomic_path
from divpref.sharing.hub import push, upload_plan


def main(smk) -> None:
    plan = upload_plan(smk.params.hub, smk.params.runs, list(smk.input.folders))
    for entry in plan:
        print(f"{entry['repo_id']} (private: {entry['private']}): {len(entry['files'])} files")
    pushed = push(plan)
    with atomic_path(smk.output.record) as tmp:
        tmp.write_text(json.dumps(pushed, indent=2) + "\n")


main(snakemake)
