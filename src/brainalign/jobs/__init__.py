"""The job layer: one module per Snakemake job family, files in and files out.

Each ``scripts/*.py`` makes one call into one of these entry points:

- :mod:`.extract`: ``extract_file`` (rule ``extract``)
- :mod:`.score`: ``score_file``, any registered metric (rule ``score``), which calls the metric's
  scorer: :mod:`.rsa` ``score_rsa``, :mod:`.encoding` ``score_encoding``, :mod:`.geometry`
  ``score_geometry`` (CKA, Procrustes, mutual k-NN)
- :mod:`.banded`: ``banded_file`` (rule ``banded_encoding``)
- :mod:`.model_similarity`: ``compare_models_file`` (rule ``model_similarity``)
- :mod:`.dataset_similarity`: ``compare_datasets_file`` (rule ``dataset_similarity``)
- :mod:`.summary`: ``collect_file`` (rule ``collect_model_scores``)
- :mod:`.maps`: ``write_encoding_maps`` (rule ``encoding_maps``)

:mod:`.common` holds what the score jobs share (inputs aligned on ``stimulus_id``, the
(subject, ROI) blocks, the scores contract). No job module imports another's private names.
"""
