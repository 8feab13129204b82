"""The fast inference path: the faithful model compiled by ``torch.compile`` (inductor).

`compile_model(model)` compiles the model's forward in place (``nn.Module.compile``): the
object stays the same PSPNet / CaffeNet, with the same state_dict, config and meta; only its
calls run the compiled code (the whole PSPNet forward is one graph, no graph break).
Recipe: plain inductor (CPU backend, default mode). Tried side by side (bench/README.md,
"Engines"): ``options={"freezing": True}`` is not honoured by torch 2.13 through
torch.compile's options (the same graph, the same output bit for bit; only the global
``torch._inductor.config.freezing`` / TORCHINDUCTOR_FREEZING=1 folds BN and calls oneDNN),
and channels_last was no faster within the shared machine's noise. Static shapes at
first; a call with another input size recompiles (torch.compile's automatic dynamic shapes
then make the sizes symbolic), so the eval windows (a few fixed crop x crop shapes) cost
one compilation each, minutes for a full PSPNet on a small CPU.

Faithfulness: same arithmetic, other rounding (inductor's fused elementwise code, its own
summation order), about as far from the float64 forward as the eager float32 forward is
(bench/README.md); tests/test_compiled.py checks the slim PSPNet101 against the Caffe
oracle with the bounds of tests/test_oracle_nets.py and against the float64 forward. Never
implied: ``psp_torch.load(..., compile=True)`` or ``eval/run.py --compile`` ask for it.

For inference: compile last, on the device the model will run on, in eval mode (a change
of ``training`` recompiles), and call it without autograd (``torch.no_grad`` /
``torch.inference_mode``, as eval/run.py does).
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from . import compat


class CompileUnavailable(RuntimeError):
    """torch.compile cannot run here (message: one line saying why)."""


@functools.cache
def _probe(device_type: str) -> str | None:
    too_old = compat.too_old(compat.COMPILE)
    if too_old:
        return too_old
    try:
        from torch._dynamo.eval_frame import check_if_dynamo_supported
        check_if_dynamo_supported()
    except Exception as exc:             # Python version, platform: torch's own wording
        return f"torch.compile is not supported here ({_first_line(exc)})"
    if device_type == "cpu":
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler
            get_cpp_compiler()
        except Exception as exc:
            return (f"inductor's CPU backend needs a C++ compiler (g++ or $CXX): "
                    f"{_first_line(exc)}")
    elif device_type == "cuda":
        from torch.utils._triton import has_triton
        if not has_triton():
            return "inductor's CUDA backend needs triton (pip install triton)"
    # One tiny real compilation: a broken toolchain, missing headers or an unwritable
    # cache folder show up here, in seconds, not minutes into compiling a model.
    try:
        fn = torch.compile(lambda a: torch.relu(a * 2.0 + 1.0), dynamic=False, fullgraph=True)
        with torch.no_grad():
            fn(torch.ones(8, device=device_type))
    except Exception as exc:
        return f"a test compilation failed: {type(exc).__name__}: {_first_line(exc)}"
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def compile_problem(device="cpu") -> str | None:
    """Why torch.compile cannot run on `device` here, in one line, or None when it can
    (checked once per device type, with a tiny real compilation)."""
    return _probe(torch.device(device).type)


def compile_model(model: nn.Module, *, dynamic: bool | None = None) -> nn.Module:
    """`model` with its forward compiled in place (see the module doc); returns `model`.

    `dynamic`: torch.compile's (None: static first, symbolic sizes after a size change;
    False: one compilation per input size). Raises CompileUnavailable (one line) where
    torch.compile cannot run on the model's device.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    problem = compile_problem(device)
    if problem:
        raise CompileUnavailable(f"cannot compile the model on {device}: {problem}")
    model.eval()
    model.compile(dynamic=dynamic)
    return model


def is_compiled(model: nn.Module) -> bool:
    """Whether `model`'s forward was compiled in place (`compile_model`, ``nn.Module.compile``)."""
    return getattr(model, "_compiled_call_impl", None) is not None
