"""Fine-tuning of retrieval models: config, the one trainer and its plug-ins, optimisers, schedules, checkpoints."""

from vitr.train.config import (
    PsSclConfig,
    TeachTextConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from vitr.train.datasets import CachedPairDataset, PairBatchSampler, PixelPairDataset, caption_tokenizer
from vitr.train.distributed import DistContext, init_distributed
from vitr.train.optim import BertAdamC4C, build_optimizer, configure_trainable, param_groups
from vitr.train.schedule import lr_factor
from vitr.train.sources import DatasetSource, DataSource, LossTerm, PairBatch, PairSelection, StepOutputs
from vitr.train.trainer import Trainer

__all__ = [
    "BertAdamC4C",
    "CachedPairDataset",
    "DataSource",
    "DatasetSource",
    "DistContext",
    "LossTerm",
    "PairBatch",
    "PairBatchSampler",
    "PairSelection",
    "PixelPairDataset",
    "PsSclConfig",
    "StepOutputs",
    "TeachTextConfig",
    "TrainConfig",
    "Trainer",
    "build_optimizer",
    "caption_tokenizer",
    "config_from_dict",
    "config_to_dict",
    "configure_trainable",
    "init_distributed",
    "load_config",
    "lr_factor",
    "param_groups",
    "save_config",
]
