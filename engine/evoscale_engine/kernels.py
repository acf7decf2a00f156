"""tfjs kernels in PyTorch: one function per kernel name, taking the named inputs and the
attributes exactly as tfjs's engine.runKernel received them. The names match trace/graph.ts's
SUPPORTED_KERNELS; autograd supplies every gradient."""

import torch
import torch.nn.functional as F


def _axes(value, rank):
    """tfjs axis attributes: a number or a list, negative counting from the end."""
    axes = value if isinstance(value, list) else [value]
    return [a + rank if a < 0 else a for a in axes]


def _reduce(fn):
    def kernel(inp, attrs):
        x = inp["x"]
        # Max names its axes reductionIndices; Sum, Mean and Min name them axis.
        dims = _axes(attrs["reductionIndices"] if "reductionIndices" in attrs else attrs["axis"], x.dim())
        return fn(x, dims, bool(attrs.get("keepDims", False)))
    return kernel


def _binary(fn):
    return lambda inp, attrs: fn(inp["a"], inp["b"])


def _unary(fn):
    return lambda inp, attrs: fn(inp["x"])


def _batch_matmul(inp, attrs):
    a, b = inp["a"], inp["b"]
    if attrs.get("transposeA"):
        a = a.transpose(-1, -2)
    if attrs.get("transposeB"):
        b = b.transpose(-1, -2)
    return torch.matmul(a, b)


def _split_v(inp, attrs):
    x = inp["x"]
    axis = _axes(attrs["axis"], x.dim())[0]
    sizes = attrs["numOrSizeSplits"]
    if isinstance(sizes, int):
        sizes = [x.shape[axis] // sizes] * sizes
    elif -1 in sizes:
        known = sum(s for s in sizes if s != -1)
        sizes = [x.shape[axis] - known if s == -1 else s for s in sizes]
    return list(torch.split(x, sizes, dim=axis))


def _cumsum(inp, attrs):
    x = inp["x"]
    axis = _axes(attrs["axis"], x.dim())[0]
    if attrs.get("reverse"):
        x = x.flip(axis)
    y = torch.cumsum(x, dim=axis)
    if attrs.get("exclusive"):
        y = y - x  # the sum of the elements before each one
    return y.flip(axis) if attrs.get("reverse") else y


def _expand_dims(inp, attrs):
    x = inp["input"]
    dim = attrs["dim"]
    return x.unsqueeze(dim + x.dim() + 1 if dim < 0 else dim)


def _slice(inp, attrs):
    x = inp["x"]
    begin = attrs["begin"] if isinstance(attrs["begin"], list) else [attrs["begin"]]
    size = attrs["size"] if isinstance(attrs["size"], list) else [attrs["size"]]
    for axis, (b, s) in enumerate(zip(begin, size)):
        x = x.narrow(axis, b, x.shape[axis] - b if s == -1 else s)
    return x


def _concat(inp, attrs):
    tensors = [inp[k] for k in sorted(inp, key=int)]
    return torch.cat(tensors, dim=_axes(attrs["axis"], tensors[0].dim())[0])


def _softplus(x):
    # threshold 20: above it softplus(x) equals x in float32, as in tfjs's own cut-off.
    return F.softplus(x, beta=1, threshold=20)


KERNELS = {
    "Abs": _unary(torch.abs),
    "Add": _binary(torch.add),
    "BatchMatMul": _batch_matmul,
    "Concat": _concat,
    "Cumsum": _cumsum,
    "Elu": _unary(F.elu),
    "Exp": _unary(torch.exp),
    "ExpandDims": _expand_dims,
    "Log": _unary(torch.log),
    "Max": _reduce(lambda x, d, k: torch.amax(x, dim=d, keepdim=k)),
    "Maximum": _binary(torch.maximum),
    "Mean": _reduce(lambda x, d, k: torch.mean(x, dim=d, keepdim=k)),
    "Min": _reduce(lambda x, d, k: torch.amin(x, dim=d, keepdim=k)),
    "Minimum": _binary(torch.minimum),
    "Multiply": _binary(torch.mul),
    "Neg": _unary(torch.neg),
    "RealDiv": _binary(torch.div),
    "Relu": _unary(torch.relu),
    "Reshape": lambda inp, attrs: inp["x"].reshape(attrs["shape"]),
    "Rsqrt": _unary(torch.rsqrt),
    "Sigmoid": _unary(torch.sigmoid),
    "Slice": _slice,
    "Softmax": lambda inp, attrs: torch.softmax(inp["logits"], dim=attrs.get("dim", -1)),
    "Softplus": _unary(_softplus),
    "SplitV": _split_v,
    "Sqrt": _unary(torch.sqrt),
    "Square": _unary(torch.square),
    "Sub": _binary(torch.sub),
    "Sum": _reduce(lambda x, d, k: torch.sum(x, dim=d, keepdim=k)),
    "Tanh": _unary(torch.tanh),
    "Tile": lambda inp, attrs: inp["x"].repeat(attrs["reps"]),
    "Transpose": lambda inp, attrs: inp["x"].permute(attrs["perm"]),
}
