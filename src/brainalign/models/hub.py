"""Models named by hub id: fetched once before any extraction job, pinned, loaded offline.

On most clusters the GPU nodes have no internet. The workflow's ``prefetch`` rule, a
``localrule`` (so it runs where Snakemake runs: the login node), resolves every model entry
whose ``source`` is a hub id to a snapshot in the Hugging Face cache (config ``hub.cache_dir``,
else the user's cache, ``HF_HUB_CACHE``): at the entry's ``revision`` when it has one, else at
the commit its default branch points to now. It writes that commit to a lock file,
``results/locks/<model>.json`` (:func:`fetch`, :func:`write_lock`), which the model's
extraction job reads (:func:`pin`): the job loads the snapshot folder with
``local_files_only`` and never touches the network, and the activations file records the
commit (``model_revision``) and the snapshot (``model_snapshot``).

The rule's params are the entry's source, revision and files, so a changed revision fetches
again and reruns extraction; an unchanged one reruns nothing and downloads nothing. A hub
stand-in (``HF_ENDPOINT``, as a mirror) works the same way.

Only the files an adapter reads are fetched (:func:`hub_patterns`): configuration and tokenizer
or image-processor files and the safetensors weights (PyTorch ``.bin`` weights only when the
repository has no safetensors), or the one GGUF file of ``hf_gguf``; an untrained control
fetches no weights.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UserInputError

#: configuration, tokenizer and image-processor files (top level and sub-folders such as 1_Pooling)
CONFIG_FILES = ("*.json", "*.txt", "*.model", "*.tiktoken", "tokenizer*")
WEIGHTS = ("*.safetensors",)
FALLBACK_WEIGHTS = ("*.bin",)
LOCK_VERSION = 1


def hub_patterns(entry: dict, weights=WEIGHTS) -> list[str]:
    """The files of a model entry's repository that its adapter reads."""
    if entry.get("gguf_file"):  # transformers reads config and tokenizer from the GGUF file itself
        return [entry["gguf_file"]]
    return list(CONFIG_FILES) + ([] if entry.get("untrained") else list(weights))


def lock_params(entry: dict) -> dict:
    """What a lock depends on (the prefetch rule's params, what :func:`fetch` reads): source,
    revision, GGUF file and whether weights are needed."""
    keys = ("source", "revision", "gguf_file", "untrained")
    return {k: entry[k] for k in keys if entry.get(k) is not None}


def _endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def fetch(name: str, entry: dict, cache_dir=None) -> dict:
    """Download (or find in the cache) the snapshot of model ``name``'s hub ``source`` at its
    ``revision`` (default: the default branch), and return the lock: the commit, the snapshot
    folder and its files. Errors name the config key."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    key = f"models.{name}"
    repo, revision = entry["source"], entry.get("revision") or None
    cache_dir = str(Path(cache_dir).expanduser().resolve()) if cache_dir else None
    where = f"'{repo}' on {_endpoint()}"

    def download(patterns):
        try:
            return Path(snapshot_download(repo, revision=revision, cache_dir=cache_dir, allow_patterns=patterns))
        except RevisionNotFoundError:
            raise UserInputError(f"config key '{key}.revision': revision '{revision or 'main'}' not found for "
                                 f"{where} (give a branch, tag or commit the repository has)") from None
        except (RepositoryNotFoundError, GatedRepoError) as exc:
            raise UserInputError(f"config key '{key}.source': repository {where} not found or not accessible "
                                 f"({type(exc).__name__}; a gated or private repository needs HF_TOKEN)") from None
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
            raise UserInputError(f"config key '{key}.source': could not fetch {where}: {exc} (the prefetch "
                                 "rule needs the network: run it on a node that has it, e.g. the login node)"
                                 ) from None

    snapshot = download(hub_patterns(entry))
    if not entry.get("gguf_file") and not entry.get("untrained") and not _files(snapshot, WEIGHTS):
        snapshot = download(hub_patterns(entry, FALLBACK_WEIGHTS))
        if not _files(snapshot, FALLBACK_WEIGHTS):
            raise UserInputError(f"config key '{key}.source': {where} has no weights (*.safetensors or *.bin) "
                                 f"at revision '{revision or 'main'}'")
    if entry.get("gguf_file") and not (snapshot / entry["gguf_file"]).is_file():
        raise UserInputError(f"config key '{key}.gguf_file': {where} has no file '{entry['gguf_file']}'")
    return {"lock_version": LOCK_VERSION, "model": name, "source": repo, "revision": revision,
            "commit": snapshot.name, "snapshot": str(snapshot), "endpoint": _endpoint(),
            "files": {str(p.relative_to(snapshot)): p.stat().st_size
                      for p in sorted(snapshot.rglob("*")) if p.is_file()}}


def _files(folder: Path, patterns) -> list[Path]:
    return [p for pattern in patterns for p in folder.rglob(pattern) if p.is_file()]


def write_lock(path, lock: dict) -> None:
    """Write a lock file atomically (a failed fetch leaves the previous lock, or none)."""
    from ..io import atomic_path

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(lock, indent=1, sort_keys=True) + "\n")


def read_lock(path) -> dict:
    """A lock file, checked: its snapshot must still be in the cache."""
    try:
        lock = json.loads(Path(path).read_text())
        snapshot = Path(lock["snapshot"])
    except (OSError, ValueError, KeyError) as exc:
        raise UserInputError(f"{path}: not a readable model lock ({exc}); delete it and rerun") from None
    missing = [f for f in lock.get("files", {}) if not (snapshot / f).is_file()]
    if not snapshot.is_dir() or missing:
        raise UserInputError(f"{path}: the snapshot of models.{lock.get('model')} ({lock.get('source')} at "
                             f"{lock.get('commit')}) is no longer complete in {snapshot} (missing: "
                             f"{missing[:3] or 'the folder'}); delete {path} and rerun to fetch it again")
    return lock


def pin(spec: dict, lock: dict) -> dict:
    """A model entry that loads its lock's snapshot offline (the adapters read ``snapshot``)."""
    return {**spec, "snapshot": lock["snapshot"], "commit": lock["commit"]}


def snapshot_of(name: str, spec: dict, cache_dir=None) -> tuple[str, str]:
    """(folder, commit) of a hub-named entry, loaded offline: its pinned snapshot (:func:`pin`),
    else, outside the workflow, a fetch now (:func:`fetch`)."""
    if spec.get("snapshot"):
        folder = Path(spec["snapshot"])
        if not folder.is_dir():
            raise UserInputError(f"config key 'models.{name}.source': pinned snapshot {folder} is gone "
                                 "from the cache; delete the model's lock in results/locks and rerun")
        return str(folder), spec.get("commit") or folder.name
    lock = fetch(name, spec, cache_dir)
    return lock["snapshot"], lock["commit"]


def offline_environment() -> None:
    """Forbid network access to huggingface_hub and transformers in this process (an
    extraction job): set before either is imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
