"""The stimulus-kind registry: how a ``stimuli.<name>`` config entry becomes the stimulus contract.

An entry names its reader by import path (``read(spec, path) -> xr.Dataset``, imported only when
a table is read) and whether its stimuli are units in context (words or sentences with a
``group`` and a ``position``: what contextual extraction and the reading-times kind need).
Adding a stimulus kind is one reader plus one :func:`register_stimulus_kind` call.

Built in:

``table``
    one row per stimulus (``stimulus_id``, a content column, condition columns); with a
    ``group_column`` and a ``position_column`` the rows are units in context (sentences of a
    passage), which contextual extraction runs passage by passage.
``words``
    one row per word (word, group and position columns; optional onset/offset), ids
    ``<group>.<position>`` unless an ``id_column`` is named.
``textgrid``
    the words of one interval tier of a Praat TextGrid, with their timings (one group).
``word_pairs``
    the distinct words of a table of word pairs (``word1``/``word2``; human similarity ratings),
    one stimulus per word, ids the words (:mod:`brainalign.word_judgements`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .registry import Registry


@dataclass(frozen=True)
class StimulusKind:
    name: str
    reader: str            # "package.module:function", read(spec, path) -> stimulus contract
    in_context: bool       # units with group and position (always, or when the table names them)
    description: str = ""

    def read_function(self):
        module, _, attr = self.reader.partition(":")
        return getattr(importlib.import_module(module), attr)


_KINDS: Registry[StimulusKind] = Registry("stimulus kind")


def register_stimulus_kind(kind: StimulusKind) -> StimulusKind:
    return _KINDS.register(kind, replace=True)


def stimulus_kind(name: str, key: str | None = None) -> StimulusKind:
    return _KINDS.get(name, key)


def stimulus_kinds() -> tuple[str, ...]:
    return _KINDS.names()


register_stimulus_kind(StimulusKind("table", "brainalign.stimuli:read_table_spec", in_context=False,
                                    description="one row per stimulus"))
register_stimulus_kind(StimulusKind("words", "brainalign.words:read_words_spec", in_context=True,
                                    description="one row per word, in order, grouped into stories"))
register_stimulus_kind(StimulusKind("textgrid", "brainalign.words:read_textgrid_spec", in_context=True,
                                    description="words with timings from a Praat TextGrid tier"))
register_stimulus_kind(StimulusKind("word_pairs", "brainalign.word_judgements:read_word_pairs_spec", in_context=False,
                                    description="the distinct words of a table of rated word pairs"))
