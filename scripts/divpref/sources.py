"""Hub downloads: one file of a Hugging Face dataset repository at a pinned revision, with provenance.

The file a dataset reads (hub download or local path) is chosen in rules/common.smk, `get_raw_annotations`.
"""

import json
import logging
import re
import shutil
import tempfile
from pathlib import Path

from divpref.io_utils import atomic_path

log = logging.getLogger(__name__)

COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


def download_hub_file(repo_id: str, filename: str, revision: str, target: str | Path) -> dict:
    """Download ``filename`` of dataset repository ``repo_id`` at ``revision`` to ``target`` (atomically).

    Returns provenance (repo, file, requested revision, resolved commit). Warns when ``revision`` is not a
    commit SHA, because a branch name does not pin the data.
    """
    from huggingface_hub import HfApi, hf_hub_download  # network code: imported only when downloading

    if not COMMIT_SHA.fullmatch(revision):
        log.warning("revision %r of %s is not a commit SHA; the download is not pinned", revision, repo_id)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as scratch:
        downloaded = hf_hub_download(
            repo_id=repo_id, filename=filename, repo_type="dataset", revision=revision, local_dir=scratch
        )
        with atomic_path(target) as tmp:
            shutil.move(downloaded, tmp)
    resolved = HfApi().dataset_info(repo_id, revision=revision).sha
    log.info("downloaded %s/%s at %s (commit %s) to %s", repo_id, filename, revision, resolved, target)
    return {"repo_id": repo_id, "filename": filename, "revision": revision, "resolved_commit": resolved}


def write_json(payload: dict, target: str | Path) -> None:
    """Write ``payload`` as indented JSON, atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
