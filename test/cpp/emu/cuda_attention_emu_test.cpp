// The CUDA attention test compiled as plain C++ against the CPU emulator of
// the kernels' warp primitives (cuda/attention_emulator.cuh), so the real
// kernel code runs in CI on machines without a GPU.
#include "../cuda_attention_test.cu"
