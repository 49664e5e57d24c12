#!/usr/bin/env bash
# `gradual eval` speed on a machine with many cores and a GPU, in ONE command: the
# before / after configurations of bench/eval_bench.ts (same scenes, figures checked to be
# identical) plus the defaults on --backend webgpu at 32 and 128 images per model call.
# Prints the machine, then the bench's table.
#
#   bench/eval_device.sh DENO [N] [ROUNDS]
#
# DENO: path of a deno 2 binary. N: scenes (default 30). ROUNDS: interleaved rounds
# (default 1). GRADUAL_CLI: the CLI entry point the bench runs (default cli/main.ts).
# The npm packages (node_modules) must be there as for any run of the CLI. The webgpu rows
# need Deno's WebGPU adapter (on Linux a Vulkan driver); without one they say so and the
# wasm rows still print.
set -euo pipefail
DENO=${1:?usage: bench/eval_device.sh DENO [N] [ROUNDS]}
N=${2:-30}
ROUNDS=${3:-1}
cd "$(dirname "$0")/.."
echo "eval_device: $(nproc) cores; $("$DENO" --version | head -n 1)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name --format=csv,noheader || true
start=$(date +%s)
"$DENO" run --allow-read --allow-env --allow-run --allow-sys=cpus,loadavg bench/eval_bench.ts \
  --n "$N" --rounds "$ROUNDS" --cli "${GRADUAL_CLI:-cli/main.ts}" \
  --configs before,after,webgpu,webgpu-b128 --optional webgpu,webgpu-b128
echo "eval_device: $(($(date +%s) - start)) s in all"
