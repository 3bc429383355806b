#!/usr/bin/env bash
# README command 1: set up, then run the offline main job (generate the lab, pretrain its CLIP, index the test
# split, search, evaluate zero-shot) at the quick scale. Extra arguments go to `vitr quickstart`: --scale full for
# the lab of docs/results.md, --scale tiny for a one-minute check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/vitr quickstart --out lab "$@"
