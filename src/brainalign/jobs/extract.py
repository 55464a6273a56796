"""Stimuli + model -> activations, streamed batch by batch to NetCDF."""

from __future__ import annotations

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ..io import ActivationWriter, provenance
from ..models.registry import model_kind
from ..models import load_model
from ..models.hardware import BatchBackOff


def extract_activations(stimuli: xr.Dataset, name: str, spec: dict, out_path, *, seed: int | None = None,
                        base_dir=None, progress: bool = True):
    """Run model ``name`` (a validated ``models.<name>`` entry) on every stimulus
    and write one ``(stimulus, unit)`` array per layer to ``out_path``.

    Memory holds one batch of activations at a time. The file appears only when
    every batch is written.
    """
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    wanted = model_kind(spec["kind"]).modality
    modality = set(stimuli["modality"].values.astype(str))
    if modality != {wanted}:  # checked before the (slow) model load
        raise ValueError(f"model '{name}' ({spec['kind']}) takes {wanted} stimuli, but stimulus set "
                         f"'{stimuli.attrs.get('name', '')}' has modality {sorted(modality)}")
    from ..words import group_texts, is_word_set

    in_context = is_word_set(stimuli) and hasattr(load_model_class(spec), "encode_in_context")
    if spec.get("context", {}).get("policy", "none") != "none" and not is_word_set(stimuli):
        raise ValueError(f"config key 'models.{name}.context': stimulus set '{stimuli.attrs.get('name', '')}' "
                         "has no units in context (use kind words, or group_column and position_column)")
    model = load_model(name, spec, base_dir=base_dir, seed=seed or 0)
    contents = stimuli["content"].values.astype(str).tolist()
    batch_size = int(spec.get("batch_size", 32 if wanted == "image" else 16))
    backoff = BatchBackOff(batch_size, f"models.{name}.batch_size")
    if in_context:  # the file's rows follow the groups, in reading order
        order = np.concatenate([rows for _, rows, _, _ in group_texts(stimuli)])
    else:
        order = np.arange(len(contents))
    ids = stimuli["stimulus_id"].values.astype(str)[order]
    attrs = {**provenance(spec, seed=seed), **model.attrs,
             "stimulus_set": stimuli.attrs.get("name", ""),
             "stimulus_checksum": stimuli.attrs.get("checksum", "")}
    with ActivationWriter(out_path, ids, model.layer_names, model.widths, layer_indices=model.layer_indices,
                          depths=model.depths, attrs=attrs,
                          dtype="float64" if spec.get("dtype") == "float64" else "float32") as writer:
        unit = "word" if stimuli.attrs.get("unit") == "word" else "stimulus"
        with tqdm(total=len(contents), desc=f"extract {name}", unit=unit, disable=not progress) as bar:
            if in_context:
                start = 0
                for rows, activations in model.encode_in_context(stimuli, batch_size):
                    if not np.array_equal(rows, order[start:start + len(rows)]):
                        raise RuntimeError("contextual extraction yielded units out of reading order")
                    writer.write(start, activations)
                    start += len(rows)
                    bar.update(len(rows))
            else:
                for start, count, activations in _encoded(model, contents, batch_size, backoff):
                    writer.write(start, activations)
                    bar.update(count)
        writer.set_attrs(backoff.attrs())
    return out_path


def load_model_class(spec: dict):
    """The adapter class of a model entry (no weights loaded)."""
    return model_kind(spec["kind"]).adapter_class()


def _encoded(model, contents: list[str], batch_size: int, backoff: BatchBackOff):
    """Yield ``(start, count, activations)``: ``model``'s activations in blocks of ``batch_size``
    stimuli, each run in pieces that fit in memory (:class:`BatchBackOff`). Models with a
    ``prepare`` step (image decoding) prepare the next block in a background thread while the
    current one runs."""
    starts = range(0, len(contents), batch_size)
    if not hasattr(model, "prepare"):
        for start in starts:
            yield from backoff.run(model.encode, contents[start:start + batch_size], start)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as pool:
        def prepare(start):
            return pool.submit(model.prepare, contents[start:start + batch_size])

        pending = prepare(0) if contents else None
        for start in starts:
            inputs = pending.result()
            pending = prepare(start + batch_size) if start + batch_size < len(contents) else None
            yield from backoff.run(model.encode_prepared, inputs, start)


def extract_file(stimuli_path, name: str, spec: dict, out_path, *, seed: int | None = None, lock=None):
    """File-level entry point used by the ``extract`` rule. Models given as
    precomputed RDMs (kinds ``rdm_mat``, ``rdm_npy``) have their RDMs written instead.
    ``lock``: a hub-named model's lock file (:mod:`brainalign.models.hub`), whose snapshot
    is loaded offline."""
    from ..io import read_netcdf
    from ..models.hub import pin, read_lock
    from ..models.rdms import write_model_rdms

    if lock:
        spec = pin(spec, read_lock(lock))
    stimuli = read_netcdf(stimuli_path)
    if model_kind(spec["kind"]).rdms:
        return write_model_rdms(name, spec, stimuli, out_path)
    return extract_activations(stimuli, name, spec, out_path, seed=seed)
