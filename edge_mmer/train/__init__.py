"""Training: the paper's pipeline end to end, into a verified model bundle.

Order (each stage feeds the next; see docs/method.md):

1. front ends: log-mel per utterance; Haar face crops from a few frames per utterance;
2. ``SpeechEncoder`` and ``FaceEncoder`` trained with cross-entropy (paper eq. 2) per utterance / frame;
3. per-modality ``ContextLSTM`` over each session's utterance sequence (unidirectional);
4. chi-square masks (eq. 1) fitted on the training split's context features;
5. ``FusionLSTM`` over the concatenated masked features -> FC features;
6. three LIBSVMs (speech, face, fused) with C/gamma picked by cross-validation;
7. fuzzy densities from each SVM's per-class validation recall; lambda solved per class and subset;
8. metrics on the held-out test speakers (per channel, per class, with and without chi-square),
   plus the dataset's own protocol (MELD weighted F1, CMU-MOSI Acc-2 Has0 / Non0).

The modules, one stage each: :mod:`.options` (what a run is given, device, progress), :mod:`.data`
(stage 1 and feature datasets), :mod:`.fit` (the fit loop), :mod:`.encoders` (2),
:mod:`.sequences` (3 and the LSTM sequence helpers), :mod:`.back_end` (4-8), :mod:`.outputs` (the
manifest's network entries and the bundle), :mod:`.report` (the metrics and their text),
:mod:`.run` (:func:`train`, wiring them).

Any dataset kind trains (``TrainOptions.dataset``: a synthetic directory or a ``KIND:PATH`` spec,
:mod:`edge_mmer.datasets.registry`); its labels become the bundle's. Media datasets go through the
front ends in worker processes and the feature cache (:mod:`edge_mmer.datasets.frontend`); a defect
found there (a corrupt or overlong clip) skips the utterance and is counted. Feature datasets
(CMU-MOSI ``.csd`` files, MMSA / MulT pickles) have no media: their pooled feature vectors,
standardised with training statistics, feed the context LSTMs directly; the bundle then has no
encoders (recorded in its description and in ``networks.*_context.input``).

An utterance in which no face is found has no face channel: the face context LSTM and the fusion
LSTM do not step on it (their state carries over), and its decision uses the speech channel alone.
Training sequences follow the same rule, so the runtime's streaming path computes the same thing.
"""

from edge_mmer.datasets.frontend import UtteranceInput
from edge_mmer.errors import TrainError
from edge_mmer.train.back_end import INTEGRALS, BackEnd, decision_reports, evaluate_split, fit_back_end
from edge_mmer.train.data import (
    FeatureInputs,
    Features,
    Session,
    feature_inputs,
    load_dataset,
    prepare_data,
    prepare_sessions,
    standardise,
    with_dataset_labels,
)
from edge_mmer.train.encoders import encode, face_embeddings, fit_face_encoder, fit_speech_encoder, speech_features
from edge_mmer.train.fit import FitContext, FitResult, fit_model
from edge_mmer.train.options import TrainOptions, TrainResult, progress, scaled_epochs, seed_everything, select_device
from edge_mmer.train.outputs import encoder_dims, network_entries, state_to_numpy, write_bundle
from edge_mmer.train.report import build_metrics, format_metrics, split_description
from edge_mmer.train.run import train
from edge_mmer.train.sequences import ContextStage, fit_context, fit_sequence_model, present_steps, run_sequences

__all__ = [
    "INTEGRALS",
    "BackEnd",
    "ContextStage",
    "FeatureInputs",
    "Features",
    "FitContext",
    "FitResult",
    "Session",
    "TrainError",
    "TrainOptions",
    "TrainResult",
    "UtteranceInput",
    "build_metrics",
    "decision_reports",
    "encode",
    "encoder_dims",
    "evaluate_split",
    "face_embeddings",
    "feature_inputs",
    "fit_back_end",
    "fit_context",
    "fit_face_encoder",
    "fit_model",
    "fit_sequence_model",
    "fit_speech_encoder",
    "format_metrics",
    "load_dataset",
    "network_entries",
    "prepare_data",
    "prepare_sessions",
    "present_steps",
    "progress",
    "run_sequences",
    "scaled_epochs",
    "seed_everything",
    "select_device",
    "speech_features",
    "split_description",
    "standardise",
    "state_to_numpy",
    "train",
    "with_dataset_labels",
    "write_bundle",
]
