"""The names the command line offers as choices, written out here so that parsing arguments (and `vitr --help`)
needs no torch, FAISS or model code. Each tuple copies its source of truth, named beside it;
tests/cli/test_fast_cli.py asserts that they stay equal."""

from __future__ import annotations

DATASETS = ("msrvtt", "msvd", "didemo", "activitynet", "vatex")  # vitr.data.readers.DATASETS
PROTOCOLS = ("clip4clip", "tie_averaged")  # vitr.eval.retrieval.PROTOCOLS
SAMPLERS = ("uniform", "c4c_1fps", "c2v_jpeg5fps")  # vitr.video.loader.SAMPLERS
LAB_SCALES = ("full", "quick", "tiny")  # vitr.lab.synth.SCALES
PSEUDO_FORMS = ("sentence", "list", "single", "temporal")  # vitr.pseudo.texts.FORMS
CHANGED = ("keep", "omit", "drop")  # vitr.pseudo.texts.CHANGED
SELECTION_RULES = ("none", "topk", "gmm", "soft", "soft_topk")  # vitr.losses.selection.Rule
SELECTION_SCORES = ("loss", "teacher", "mix")  # vitr.losses.selection.Score
ANCHORS = ("feature", "relation", "symmetric", "still")  # vitr.train.ps_scl.ANCHORS
HEADS = ("clip2video", "meanP", "seqTransf", "tab", "tdb")  # vitr.heads.available_heads()
STORE_KINDS = ("flat", "hnsw", "ivf", "milvus")  # vitr.index.store.STORE_KINDS
SEGMENT_KINDS = ("windows", "shots", "shots+windows")  # vitr.index.video_index.SEGMENT_KINDS
PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # vitr.inference.plan.PRECISION_CHOICES
DECODERS = ("pyav", "torchcodec")  # vitr.video.decode.DECODERS
SEARCH_MODES = ("visual", "text", "hybrid")  # vitr.index.hybrid.MODES
FUSIONS = ("rrf", "weighted")  # vitr.index.hybrid.FUSIONS
ASR_ENGINES = ("pocketsphinx", "faster-whisper")  # vitr.index.asr.ENGINES
DEFAULT_FUSION = "weighted"  # vitr.index.hybrid.DEFAULT_FUSION
WEAK_QUANTILE = 0.95  # vitr.index.calibration.WEAK_QUANTILE
HEADER_TIMEOUT_S = 10.0  # vitr.serve.server.HEADER_TIMEOUT_S
