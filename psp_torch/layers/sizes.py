"""Blob sizes that may be symbolic: the shape arithmetic of Pooling and Interp.

Under torch.export, torch.compile (dynamic shapes) and the ONNX exporter a blob's
height and width are ``torch.SymInt``s, in eager Python ints. The layers compute
with both alike: integer operators, ``torch.sym_min``/``torch.sym_max`` and torch
ops, never numpy or ``int()`` (which would freeze the traced graph to one size).

- `require` checks a size condition: a plain False raises ValueError (the layer's
  message); a symbolic one becomes a guard or runtime assertion of the graph.
- `known_true` decides a condition only where it needs no guard (always in
  eager), for shortcuts that must not specialise a traced graph.
- `memo_for_ints` memoises a size-derived tensor function (Interp weights, AVE
  divisors) for plain-int sizes in eager only: a traced graph computes them with
  the same torch ops instead, from its symbolic sizes.
- `FLOAT32_EXACT`: Caffe computes some sizes in float32; integers up to 2**24 are
  exact there (the layers refuse sizes past it rather than assume).
"""
from __future__ import annotations

import functools
from typing import Callable

import torch
try:                                    # torch >= 2.3
    from torch.compiler import is_compiling
    from torch.fx.experimental.symbolic_shapes import statically_known_true
except ImportError:                     # older: no symbolic size reaches the layers there
    from torch._dynamo import is_compiling  # (tracing needs a newer torch: psp_torch.compat)

    def statically_known_true(cond) -> bool:
        return False

FLOAT32_EXACT = 2 ** 24


def require(cond, message: Callable[[], str]) -> None:
    """ValueError(message()) when a concrete `cond` is false; torch._check when symbolic."""
    if isinstance(cond, torch.SymBool):
        torch._check(cond, message)
    elif not cond:
        raise ValueError(message())


def known_true(cond) -> bool:
    """True when `cond` holds for every size a traced graph admits (plain bools: themselves)."""
    return bool(cond) if isinstance(cond, bool) else statically_known_true(cond)


def ceil_div(a, b):
    """ceil(a / b) for integers a > -b, b > 0, as ``(a + b - 1) // b``.

    The numerator is then non-negative, where floor and truncating division agree:
    a traced graph may run the ``//`` as ONNX's integer Div, which truncates.
    """
    return (a + b - 1) // b


def size(v):
    """A size as an int (numpy ints included) or as the SymInt it is (never frozen)."""
    return v if isinstance(v, torch.SymInt) else int(v)


def memo_for_ints(fn):
    """`fn(*sizes_and_options)` memoised when no tracer runs and no argument is a SymInt.

    The cached tensors are shared: callers must only read them. They are made
    outside inference mode, so a training forward may use weights first made
    under ``torch.inference_mode``.
    """
    @functools.lru_cache(maxsize=512)
    def cached(*args):
        with torch.inference_mode(False):
            return fn(*args)

    @functools.wraps(fn)
    def call(*args):
        if is_compiling() or _symbolic(args):
            return fn(*args)
        return cached(*args)
    return call


def _symbolic(args) -> bool:
    return any(_symbolic(a) if isinstance(a, tuple) else isinstance(a, torch.SymInt)
               for a in args)
