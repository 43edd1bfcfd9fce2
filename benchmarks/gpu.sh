#!/usr/bin/env bash
# The GPU figures in one command (about 10 minutes on an H100/H200):
#
#     bash benchmarks/gpu.sh
#
# Needs: pip install -e '.[weights]' sentence-transformers, ffmpeg, one CUDA GPU. Prints, each against a
# baseline measured in the same run:
#   1. texts/s, gemb2 vs sentence-transformers `encode` on all-MiniLM-L6-v2, 20,000 mixed sentences (goal >= 5x)
#   2. images/s, audio-seconds/s, video-seconds/s of `gemb2 embed` with gemb2-mini, against the model alone
#   3. training samples/s and model FLOPs utilisation of the `base` config (bf16 autocast)
#   4. texts/s and images/s, gemb2 vs transformers + its processor on full-size EmbeddingGemma 2 (random weights,
#      bf16; builds the ~3 GB folder in /tmp first; goal >= 1.2x). On a CPU, `--device cpu --tiny` checks the line.
# Record the output in BENCHMARKS.md with the card's name (printed first).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 LANCE_LOG=error LANCEDB_LOG=error PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "== 1. text: gemb2 vs sentence-transformers =="
timeout 240 python benchmarks/text_vs_sentence_transformers.py --device cuda --n 20000 --rounds 2
echo "== 2. media through gemb2 embed (gemb2-mini) =="
timeout 240 python benchmarks/gpu_media.py --model gemb2-mini --device cuda --workers "$(( $(nproc) > 12 ? 12 : $(nproc) ))"
echo "== 3. training (base config) =="
timeout 120 python benchmarks/train.py --model base --batch-size 128 --steps 20 --tokens 128
echo "== 4. EmbeddingGemma 2, full size, bf16: gemb2 vs transformers + its processor =="
timeout 300 python benchmarks/embedding_gemma2.py --device cuda --precision bf16 --texts 2000 --images 64 --rounds 2
