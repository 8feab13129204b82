"""Is a device string one this machine has? One check for the CLIs (--device, a usage error)
and the library (`psp_torch.load(device=...)`), so that a missing GPU is never reported as
something else, such as an unreadable model file."""
from __future__ import annotations

import torch


def device_problem(text) -> str | None:
    """None when `text` names a device this machine has; else what is wrong, worded to follow
    the device's repr (``'cuda': no CUDA device here ...``)."""
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        return " is not a device (use cpu, cuda, cuda:N or mps)"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else \
                f"built for CUDA {torch.version.cuda}, but no GPU is visible"
            return f": no CUDA device here (torch {torch.__version__} is {build}); use cpu"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return f": only {torch.cuda.device_count()} CUDA device(s) here"
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            return ": no MPS device here; use cpu"
    elif dev.type not in ("cpu", "meta"):
        return f": unsupported device type {dev.type!r} (use cpu, cuda, cuda:N or mps)"
    return None


def check_device(text) -> None:
    """Raise ValueError naming the device when this machine does not have it."""
    problem = device_problem(text)
    if problem:
        raise ValueError(f"device {str(text)!r}{problem}")
