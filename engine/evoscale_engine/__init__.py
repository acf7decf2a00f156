"""evoscale's PyTorch engine: trains the fixed evoscale transformer with a traced attention graph.

The attention comes as data (a kernel graph traced from a validated tfjs block); nothing here
executes candidate code.
"""

MIN_TORCH = (1, 13)


class EngineError(Exception):
    """Bad input a person can act on (torch too old, unsupported kernel, shape mismatch): one line."""


class Diverged(EngineError):
    """The candidate's own fault: its loss became NaN or infinite."""


def require_torch():
    """The torch module, or an EngineError saying why it cannot be used."""
    try:
        import torch
    except ImportError as err:
        raise EngineError(f"PyTorch is not importable by this interpreter ({err}); install torch >= 1.13") from None
    import re

    version = tuple(int(p) for p in re.findall(r"\d+", torch.__version__)[:2])  # "1.13.0a0", "2.5.1+cu124"
    if version < MIN_TORCH:
        raise EngineError(f"PyTorch {torch.__version__} is too old; the engine needs >= 1.13")
    return torch
