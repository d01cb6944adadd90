#!/usr/bin/env bash
# What a GPU machine offers miniglm, in one short run (issue 9):
#   the GPU and driver (nvidia-smi), the CUDA runtime, cuBLAS and nvcc (present or not, where),
#   Vulkan (for tfjs' webgpu backend through Dawn), and the CPU the native backend would use.
# Where nvcc and cuBLAS exist it compiles a small cuBLAS sgemm probe (GFLOP/s at the sizes of
# a training step's products) and reports it: the numbers a CUDA variant of the native
# backend (cuBLAS plus the same fused kernels) would start from. That variant is not written
# yet; the probe says so. With --bench it also runs `npm run bench` (the CPU backends).
# Read-only: installs nothing, downloads nothing, changes no GPU setting.
set -uo pipefail
cd "$(dirname "$0")/.."

say() { printf '%-22s %s\n' "$1" "$2"; }
found_lib() {
  { ldconfig -p 2>/dev/null | grep -o "/[^ ]*/$1[^ ]*"
    ls /usr/local/cuda*/lib*/$1* /usr/local/cuda*/targets/*/lib/$1* /usr/lib/*-linux-gnu/$1* 2>/dev/null; } | head -1
}

echo "== miniglm gpu probe ($(date -u +%FT%TZ), $(hostname))"
say cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) x $(nproc)"
say memory "$(free -g | awk '/Mem:/ {print $2 " GiB"}')"
if command -v nvidia-smi >/dev/null; then
  say nvidia-smi "$(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>&1 | head -4 | paste -sd';')"
  say "cuda (driver)" "$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1)"
else
  say nvidia-smi "absent"
fi
CUDART=$(found_lib libcudart.so)
CUBLAS=$(found_lib libcublas.so)
say "cuda runtime" "${CUDART:-absent}"
say cublas "${CUBLAS:-absent}"
NVCC=$(command -v nvcc || ls /usr/local/cuda*/bin/nvcc 2>/dev/null | head -1)
if [ -n "$NVCC" ]; then say nvcc "$NVCC ($("$NVCC" --version | tail -1))"; else say nvcc absent; fi
if command -v vulkaninfo >/dev/null; then
  say vulkan "$(vulkaninfo --summary 2>/dev/null | grep -m3 -E 'deviceName|driverName' | xargs)"
else
  say vulkan "$(found_lib libvulkan.so || echo absent) (no vulkaninfo)"
fi
say "native backend" "$(node -e "import('./packages/native/build.mjs').then(m => { const p = m.plan(); console.log(p.missing ? 'cannot build: ' + p.missing : 'buildable with ' + p.compiler) })" 2>&1)"

if [ -n "$NVCC" ] && [ -n "$CUBLAS" ]; then
  dir=$(mktemp -d)
  cat >"$dir/probe.cu" <<'CU'
// cuBLAS sgemm throughput at a training step's product sizes (row-major C = A·B as cuBLAS's
// column-major Cᵀ = Bᵀ·Aᵀ), with the time per call from CUDA events.
#include <cstdio>
#include <cublas_v2.h>
#include <cuda_runtime.h>
int main() {
  const int sizes[][3] = {{2048, 384, 128}, {2048, 4096, 128}, {2048, 2048, 512}, {8192, 8192, 512}, {4096, 4096, 4096}};
  cublasHandle_t h;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) { printf("cublasCreate failed\n"); return 1; }
  for (auto& s : sizes) {
    int m = s[0], n = s[1], k = s[2];
    float *a, *b, *c;
    cudaMalloc(&a, sizeof(float) * m * k); cudaMalloc(&b, sizeof(float) * k * n); cudaMalloc(&c, sizeof(float) * m * n);
    const float one = 1, zero = 0;
    cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, b, n, a, k, &zero, c, n);
    cudaEvent_t t0, t1; cudaEventCreate(&t0); cudaEventCreate(&t1);
    const int reps = 20;
    cudaEventRecord(t0);
    for (int i = 0; i < reps; i++) cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one, b, n, a, k, &zero, c, n);
    cudaEventRecord(t1); cudaEventSynchronize(t1);
    float ms; cudaEventElapsedTime(&ms, t0, t1);
    printf("sgemm %5d x %5d x %5d  %8.3f ms  %8.1f GFLOP/s\n", m, n, k, ms / reps, 2.0 * m * n * k * reps / (ms * 1e6));
    cudaFree(a); cudaFree(b); cudaFree(c);
  }
  cublasDestroy(h);
  return 0;
}
CU
  if "$NVCC" -O2 -o "$dir/probe" "$dir/probe.cu" -L"$(dirname "$CUBLAS")" -lcublas 2>"$dir/err"; then
    "$dir/probe"
  else
    echo "cuBLAS probe did not compile: $(head -3 "$dir/err")"
  fi
  rm -rf "$dir"
  echo "CUDA variant of the native backend: not written yet (the probe above measures what it would start from)"
else
  echo "CUDA variant: not built (needs nvcc and cuBLAS)"
fi

if [ "${1:-}" = "--bench" ]; then
  npm run bench
fi
