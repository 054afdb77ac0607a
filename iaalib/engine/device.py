"""Where the engine runs: device choice, CPU threads, determinism, mixed precision, memory format."""
from __future__ import annotations

import os
import warnings

import torch


def select_device(name: str = "auto", *, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (``cuda:<local_rank>`` under DDP), then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def configure_torch(device: torch.device, *, deterministic: bool, num_threads: int | None = None,
                    local_world_size: int = 1) -> int:
    """Thread count and determinism. **Choice:** on the CPU, ``num_threads`` or the CPUs this
    process may use divided by the processes on this machine (DDP ranks share the cores).
    Returns the intra-op thread count."""
    if device.type == "cpu":
        n = num_threads or max(1, available_cpus() // max(1, local_world_size))
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    if deterministic:
        # cuBLAS needs this before its first call to be deterministic (CUDA >= 10.2).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.use_deterministic_algorithms(False)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    return torch.get_num_threads()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX): without it, bf16
    autocast on the CPU converts in software and is slower than fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, p, lambda: False)()) for p in probes)


def use_amp(device: torch.device, requested: bool, *, cpu: bool = False) -> bool:
    """bf16 autocast on CUDA when ``requested``; on the CPU only when ``cpu`` as well and the CPU
    has native bf16 (:func:`cpu_has_native_bf16`; otherwise fp32, with a warning). MPS stays fp32.
    """
    if not requested:
        return False
    if device.type == "cuda":
        return True
    if device.type == "cpu" and cpu:
        if cpu_has_native_bf16():
            return True
        warnings.warn("cpu_amp: this CPU has no native bf16 (AVX-512 BF16 or AMX), so the run "
                      "trains in fp32; run.json records amp: false", RuntimeWarning, stacklevel=2)
    return False


#: oneDNN's AVX2 kernel for the backward pass of a strided 1×1 convolution corrupts memory in
#: the channels-last format when the convolution has fewer input channels than this.
NHWC_MIN_STRIDED_1X1_CHANNELS = 8


def narrow_strided_1x1(model: torch.nn.Module) -> list[str]:
    """The names of ``model``'s 1×1 convolutions of stride > 1 with fewer than
    :data:`NHWC_MIN_STRIDED_1X1_CHANNELS` input channels (e.g. a ResNet's downsampling shortcut at
    width 1/16)."""
    return [name for name, m in model.named_modules()
            if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)
            and m.stride != (1, 1) and m.in_channels < NHWC_MIN_STRIDED_1X1_CHANNELS]


def use_channels_last(model: torch.nn.Module, device: torch.device, requested: bool, *,
                      warn: bool = True) -> bool:
    """The memory format a run trains ``model`` in: channels-last when ``requested``, except on
    a CPU for a model with a narrow strided 1×1 convolution (:func:`narrow_strided_1x1`). With
    PyTorch 2.14.1 on a CPU without AVX-512, oneDNN computes that convolution's input gradient with
    an AVX2 kernel that writes outside its buffers in the channels-last format: the process aborts
    ("double free or corruption") or hangs (``benchmarks/bench_onednn_nhwc.py``). Such
    convolutions occur in the tests' tiny networks, not in the papers' or the demo's. **Choice:**
    such a model trains contiguous on every CPU, with a warning, so that its numbers do not depend
    on the CPU's instruction set; ``run.json`` records the format (``channels_last``).
    ``warn=False``: decide quietly (a trained model loaded in the format it trained in)."""
    if not requested:
        return False
    narrow = narrow_strided_1x1(model) if device.type == "cpu" else []
    if narrow and warn:
        warnings.warn(f"channels_last: {', '.join(narrow[:3])} (a strided 1x1 convolution with "
                      f"fewer than {NHWC_MIN_STRIDED_1X1_CHANNELS} input channels) has no safe "
                      "channels-last kernel on AVX2 CPUs, so the run trains contiguous; run.json "
                      "records channels_last: false", RuntimeWarning, stacklevel=2)
    return not narrow


def reset_peak_memory(device: torch.device) -> None:
    """Start :func:`peak_memory` afresh (CUDA only: a process's CPU high-water mark cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: torch.device) -> dict:
    """The run's peak memory in MiB: CUDA's max allocated since :func:`reset_peak_memory`, or on a
    CPU the process's max resident set size (an upper bound for a pool worker that ran other runs
    before)."""
    if device.type == "cuda":
        return {"mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1),
                "kind": "cuda max allocated"}
    import resource

    return {"mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "kind": "process max RSS"}
