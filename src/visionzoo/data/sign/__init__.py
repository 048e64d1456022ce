"""Sign-language data: readers of the real on-disk formats, the common sample type, vocabularies.

=================  ==========================================  ===========================================
registry name      reader                                      what it reads
=================  ==========================================  ===========================================
``phoenix2014``    :func:`read_phoenix2014`                    multisigner ``*.corpus.csv`` + PNG frames
``phoenix2014t``   :func:`read_phoenix2014t`                   ``PHOENIX-2014-T.*.corpus.csv`` + PNG frames
``csl-daily``      :func:`read_csl_daily`                      ``csl2020ct_v2.pkl`` + ``split_1.txt`` + JPG
``wlasl``          :func:`read_wlasl`                          ``WLASL_v0.3.json`` (+ ``nslt_N.json``) + mp4
``msasl``          :func:`read_msasl`                          ``MSASL_{split}.json`` + classes + mp4
``how2sign``       :func:`read_how2sign`                       ``how2sign_realigned_*.csv`` + mp4 clips
=================  ==========================================  ===========================================

Every reader returns a :class:`SignIndex` (samples + :class:`SkipReport`); ``skip_bad=True`` logs and
counts bad entries instead of raising. :class:`SignDataset` + :func:`collate_sign_batch` feed a model;
:class:`Vocabulary` maps glosses / words to ids; official pickles load through :func:`load_pickle`,
which refuses anything but containers and numpy arrays.
"""

from visionzoo.data.sign.csl_daily import read_csl_daily
from visionzoo.data.sign.datasets import (
    SIGN_DATASETS, SignDataset, collate_sign_batch, pad_sequences, read_sign_dataset, verify_media,
)
from visionzoo.data.sign.how2sign import read_how2sign
from visionzoo.data.sign.keypoint_files import NpzKeypoints, PickleKeypoints, validate_keypoints
from visionzoo.data.sign.msasl import read_msasl
from visionzoo.data.sign.phoenix import read_phoenix2014, read_phoenix2014t
from visionzoo.data.sign.safe_pickle import RestrictedUnpickler, load_pickle
from visionzoo.data.sign.sample import SignIndex, SignSample, SkipReport
from visionzoo.data.sign.vocab import Vocabulary, build_gloss_vocab, build_text_vocab, text_tokens
from visionzoo.data.sign.wlasl import read_wlasl

__all__ = [
    "SIGN_DATASETS", "NpzKeypoints", "PickleKeypoints", "RestrictedUnpickler", "SignDataset", "SignIndex",
    "SignSample", "SkipReport", "Vocabulary", "build_gloss_vocab", "build_text_vocab", "collate_sign_batch",
    "load_pickle", "pad_sequences", "read_csl_daily", "read_how2sign", "read_msasl", "read_phoenix2014",
    "read_phoenix2014t", "read_sign_dataset", "read_wlasl", "text_tokens", "validate_keypoints", "verify_media",
]
