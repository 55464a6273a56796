"""Config: the schema (shipped as package data), validation, expansion and job planning.

- :mod:`.schema`: load YAML, validate against ``config.schema.yaml`` and fill defaults.
- :mod:`.validate`: what a schema cannot check (files, sources, cross-references, settings).
- :mod:`.expand`: entries the user asked for without writing them (untrained controls).
- :mod:`.plan`: the jobs a config asks for (what the Snakefile's targets read).

Importing it imports no torch: the kind and metric registries it reads name their code by
import path.
"""

from .expand import UNTRAINED_SUFFIX, add_untrained_controls
from .plan import (analysis_jobs, analysis_settings, banded_entry, banded_jobs, comparison_measures,
                   dataset_comparison_jobs, dataset_comparison_measures, extraction_jobs, geometry_entry,
                   geometry_jobs, is_hub_named, is_rdm_kind,
                   is_volumetric, model_comparison_jobs, model_summary_jobs, planted_models, simulated_files)
from .schema import SCHEMA_PATH, ConfigError, check_schema, load_schema, load_yaml
from .validate import load_config, model_modality, validate_config
from ..sources import resolve_source, split_import_path

__all__ = [
    "SCHEMA_PATH", "UNTRAINED_SUFFIX", "ConfigError", "add_untrained_controls", "analysis_jobs", "analysis_settings",
    "banded_entry", "banded_jobs", "check_schema", "comparison_measures", "dataset_comparison_jobs",
    "dataset_comparison_measures", "extraction_jobs", "geometry_entry", "geometry_jobs", "is_rdm_kind", "is_volumetric", "load_config", "load_schema",
    "load_yaml", "model_comparison_jobs", "model_modality", "model_summary_jobs", "planted_models",
    "resolve_source", "simulated_files", "split_import_path", "validate_config",
]
