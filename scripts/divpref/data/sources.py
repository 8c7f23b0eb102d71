"""Hub downloads: one file of a Hugging Face dataset repository, or a whole model, at a pinned revision.

The file a dataset reads (hub download or local path) is chosen in rules/helpers/data.smk,
`get_raw_annotations`; the backbone folder a training run loads, in `get_train_model`.
"""

import json
import logging
import re
import shutil
import tempfile
from pathlib import Path

from divpref.common.atomic_io import atomic_path

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


MODEL_IGNORE_PATTERNS = ("original/*", "*.pth", "*.msgpack", "*.h5", "*.onnx")
"""Not downloaded with a backbone: Meta's own consolidated checkpoint (``original/``, another 16 GB) and other
frameworks' weight formats; transformers loads the safetensors (or .bin) files."""

PROVENANCE_FILE = "download_provenance.json"


def download_hub_model(repo_id: str, revision: str, target: str | Path) -> dict:
    """Download model repository ``repo_id`` at ``revision`` into the folder ``target`` (atomically).

    Gated models (Llama 3) need the license accepted on the hub and a token: ``hf auth login``
    (huggingface_hub >= 1.0 installs ``hf``; ``huggingface-cli`` is gone). Writes and returns the provenance.
    """
    from huggingface_hub import HfApi, snapshot_download  # network code: imported only when downloading

    if not COMMIT_SHA.fullmatch(revision):
        log.warning("revision %r of %s is not a commit SHA; the download is not pinned", revision, repo_id)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        try:
            snapshot_download(
                repo_id=repo_id,
                revision=revision,
                local_dir=tmp,
                ignore_patterns=list(MODEL_IGNORE_PATTERNS),
            )
        except Exception as error:
            raise RuntimeError(
                f"downloading model {repo_id!r} at revision {revision!r} failed ({type(error).__name__}: "
                f"{error}); for a gated model accept its license on huggingface.co and run `hf auth login`, "
                f"or set model.name_or_path to a local folder"
            ) from error
        resolved = HfApi().model_info(repo_id, revision=revision).sha
        provenance = {"repo_id": repo_id, "revision": revision, "resolved_commit": resolved}
        write_json(provenance, tmp / PROVENANCE_FILE)
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's download metadata
    log.info("downloaded model %s at %s (commit %s) to %s", repo_id, revision, resolved, target)
    return provenance
