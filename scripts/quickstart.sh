#!/usr/bin/env bash
# README command 1: set up, then run the offline main job (generate the lab, pretrain its CLIP, extract,
# index, search, evaluate zero-shot). Extra arguments go to `vitr quickstart` (e.g. --scale tiny).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/vitr quickstart --out lab "$@"
