"""Where the engine runs: device choice, CPU threads, determinism, mixed precision."""
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
