#!/usr/bin/env bash
# The GPU measurement of issue 17 (item 4) as one short script: srflow's WebGPU backend against
# the native CPU kernels (2 threads) for paper4x at LR 64 and 128 (one sample, sampling at
# τ = 0.9, median of 3 after a warm-up), then the parity check on the GPU. Prints the adapter, one
# JSON line per bench and the verify summary; record them in docs/PERFORMANCE.md with the machine.
#
#   npm install && npx tsc -p tsconfig.build.json     # once (dist/, the addon, the webgpu package)
#   bash scripts/gpu-bench.sh                         # FIXTURE=… for another parity fixture folder
#
# On a machine without a GPU the WebGPU runs fall back to SwiftShader (a CPU): the numbers then say
# nothing about GPUs (the adapter line shows which ran).
set -euo pipefail
cd "$(dirname "$0")/.."
FIXTURE="${FIXTURE:-../shared/fixtures/parity-4x}"
PRESET="${PRESET:-paper4x}"     # PRESET=small4x SIZES=8 REPEAT=1: a dry run of this script on SwiftShader
SIZES="${SIZES:-64 128}"
REPEAT="${REPEAT:-3}"
CLI=(node dist/cli/index.js)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"${CLI[@]}" info models/srflow-4x.safetensors --backend webgpu --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);console.log("webgpu adapter:",j.adapter??j.adapterError)})'
for lr in $SIZES; do
  "${CLI[@]}" bench infer --preset "$PRESET" --lr-size "$lr" --threads 2 --repeat "$REPEAT" --json
  "${CLI[@]}" bench infer --preset "$PRESET" --lr-size "$lr" --backend webgpu --repeat "$REPEAT" --json
done
if [ -f "$FIXTURE/weights.pth" ]; then
  "${CLI[@]}" verify --model "$FIXTURE/weights.pth" --config "$FIXTURE/config.json" --reference "$FIXTURE/tensors.safetensors" --backend webgpu --json |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);const w=j.results.reduce((a,r)=>r.relErr>a.relErr?r:a);console.log(JSON.stringify({verify:j.pass?"pass":"FAIL",backend:j.backend,adapter:j.adapter,quantities:j.results.length,worst:[w.name,w.relErr]}))})'
else
  echo "no parity fixture at $FIXTURE: verify skipped"
fi
