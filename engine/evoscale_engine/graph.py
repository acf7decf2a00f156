"""Traced attention graphs (trace/graph.ts): loading, checking and interpreting them with the
kernels of kernels.py. The graph is data: interpreting it runs only those kernels."""

import base64
import json

import numpy as np
import torch

from . import EngineError
from .kernels import KERNELS

GRAPH_FORMAT = "evoscale-attention-graph/1"
_DTYPES = {"float32": (np.float32, torch.float32), "int32": (np.int32, torch.int32), "bool": (np.uint8, torch.bool)}


def load_graph(path):
    with open(path, encoding="utf-8") as f:
        return check_graph(json.load(f))


def check_graph(graph, shape=None):
    """Refuses, with one line, a graph this engine cannot run or one traced at another shape."""
    if not isinstance(graph, dict) or graph.get("format") != GRAPH_FORMAT:
        raise EngineError(f"not a {GRAPH_FORMAT} graph")
    for node in graph["nodes"]:
        if node["op"] == "Kernel" and node["kernel"] not in KERNELS:
            raise EngineError(f"graph {graph.get('hash')} uses kernel {node['kernel']}, which the torch engine does not implement")
    if shape is not None:
        traced = graph["shape"]
        wanted = {"batch": shape["batch"], "seqLen": shape["seqLen"], "dModel": shape["dModel"], "nHeads": shape["nHeads"]}
        if any(traced[k] != v for k, v in wanted.items()):
            raise EngineError(f"graph {graph.get('hash')} was traced at {traced}, not at the training shape {wanted}")
    return graph


def const_value(node):
    """A folded constant's values as a tensor (CPU)."""
    np_type, torch_type = _DTYPES[node["out"]["dtype"]]
    values = np.frombuffer(base64.b64decode(node["data"]), dtype=np_type).copy()
    return torch.from_numpy(values).reshape(node["out"]["shape"]).to(torch_type)


class GraphProgram:
    """A graph ready to run on one device: its constants decoded once."""

    def __init__(self, graph, device="cpu"):
        self.graph = graph
        self.consts = {i: const_value(n).to(device) for i, n in enumerate(graph["nodes"]) if n["op"] == "Const"}
        self.param_specs = [(p["name"], graph["nodes"][p["node"]]) for p in graph["params"]]

    def run(self, x, mask, params):
        """The attention output for x (B, T, D); params by the block's parameter name."""
        values = []
        for i, node in enumerate(self.graph["nodes"]):
            op = node["op"]
            if op == "Input":
                values.append([x if node["name"] == "x" else mask])
            elif op == "Param":
                values.append([params[node["name"]]])
            elif op == "Const":
                values.append([self.consts[i]])
            else:
                inputs = {name: values[src][k] for name, (src, k) in node["inputs"]}
                out = KERNELS[node["kernel"]](inputs, node["attrs"])
                values.append(out if isinstance(out, list) else [out])
        src, k = self.graph["output"]
        return values[src][k]
