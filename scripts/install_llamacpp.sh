#!/usr/bin/env bash
# Build llama.cpp's server (llama-server) once and keep it in the user cache.
#
# The llama.cpp backend (docs/llamacpp.md) runs GGUF models on it. PyPI has no prebuilt CPU
# build that fits these machines, so it is compiled from the llama.cpp tree vendored in the
# pinned llama-cpp-python sdist (6 min 20 s on this project's two-core machines, progress shown). Later runs
# find the binary in the cache and return at once. Set H2OGPT_SKIP_LLAMACPP=1 to skip the
# build (the app then serves GGUF models with transformers).
set -euo pipefail
VERSION=0.3.36
cache="${XDG_CACHE_HOME:-$HOME/.cache}/h2ogpt/llama.cpp/$VERSION"
bin="$cache/bin/llama-server"
if [[ "${H2OGPT_SKIP_LLAMACPP:-0}" == "1" ]]; then echo "llama.cpp: skipped"; exit 0; fi
# -march=native, but without ggml's AMX kernels: on a CPU with AMX (seen on an Intel Xeon VM,
# 2026-12-03) llama-server built with them crashes (SIGSEGV in ggml_backend_amx_mul_mat)
# on its first decode, for the default model and any other. -U drops the macro -march sets.
flags="-U__AMX_INT8__"
amx_cpu=0; grep -qw amx_int8 /proc/cpuinfo 2>/dev/null && amx_cpu=1
if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
  # a binary built before AMX was left out is rebuilt only where the CPU has AMX
  if [[ $amx_cpu == 0 || "$(cat "$bin.flags" 2>/dev/null)" == "$flags" ]]; then
    echo "llama.cpp: $bin (cached)"; exit 0
  fi
  echo "llama.cpp: the cached llama-server may use AMX kernels on this AMX CPU: rebuilding without them"
fi
for tool in cmake make g++; do
  command -v "$tool" >/dev/null || { echo "llama.cpp: $tool is missing; install it (apt-get install cmake build-essential)" >&2; exit 1; }
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "llama.cpp: building llama-server from llama-cpp-python==$VERSION (about 6-20 min on 2 cores, once)"
python -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$work"
tar -xzf "$work"/llama_cpp_python-"$VERSION".tar.gz -C "$work"
src="$work/llama_cpp_python-$VERSION/vendor/llama.cpp"
cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON \
  -DGGML_NATIVE=ON -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" >"$work/cmake.log" \
  || { cat "$work/cmake.log" >&2; exit 1; }
cmake --build "$work/build" --target llama-server -j "$(nproc)"
mkdir -p "$cache/bin"
cp "$work/build/bin/llama-server" "$bin.tmp" && mv "$bin.tmp" "$bin"
echo "$flags" >"$bin.flags"
"$bin" --version
echo "llama.cpp: built $bin"
