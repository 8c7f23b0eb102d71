"""Target ``push``: upload every shareable adapter folder (adapter + model card) to the hub.

:func:`upload_plan` says what would be uploaded (repo ids, files) without touching the network;
:func:`push` carries it out with ``huggingface_hub.HfApi`` (a token: ``hf auth login`` or ``HF_TOKEN``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

DEFAULT_PREFIX = "divpref-"


def repo_id(hub: Mapping[str, Any], dataset: str, condition: str, seed: int | str) -> str:
    """``{namespace}/{prefix}{dataset}-{condition}-seed{seed}`` (config ``hub``)."""
    prefix = str(hub.get("prefix", DEFAULT_PREFIX))
    return f"{hub['namespace']}/{prefix}{dataset}-{condition}-seed{seed}"


def require_hub(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Config ``hub``; a ``ValueError`` naming the key when target ``push`` runs without it."""
    hub = config.get("hub")
    if not hub:
        raise ValueError(
            "config key hub: target push uploads the selected adapters to the hub and needs "
            "`hub: {namespace: <user or organisation>, private: true}` in the config"
        )
    return hub


def upload_plan(
    hub: Mapping[str, Any], runs: Sequence[Mapping[str, Any]], folders: Sequence[str | Path]
) -> list[dict]:
    """Per run: ``repo_id``, ``private``, ``folder`` and the ``files`` it uploads (relative, sorted)."""
    if len(runs) != len(folders):
        raise ValueError(f"{len(runs)} runs but {len(folders)} shareable folders")
    plan = []
    for run, folder in zip(runs, folders, strict=True):
        folder = Path(folder)
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        plan.append(
            {
                "repo_id": repo_id(hub, run["dataset"], run["condition"], run["seed"]),
                "private": bool(hub.get("private", True)),
                "folder": str(folder),
                "files": files,
            }
        )
    return plan


def push(plan: Sequence[Mapping[str, Any]], api: Any = None) -> list[dict]:
    """Create each repo (if missing) and upload its folder in one commit; return repo ids and commit URLs."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    done = []
    for entry in plan:
        api.create_repo(entry["repo_id"], repo_type="model", private=entry["private"], exist_ok=True)
        commit = api.upload_folder(
            repo_id=entry["repo_id"],
            repo_type="model",
            folder_path=entry["folder"],
            commit_message="Upload reward-model adapter and model card (divpref)",
        )
        done.append({**entry, "commit_url": str(getattr(commit, "commit_url", commit))})
    return done
