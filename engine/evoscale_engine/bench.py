"""`python -m evoscale_engine.bench SPEC.json`: the torch side of `npm run bench`. Per size: the
engine's ms/step on a traced graph, the same step of a plain hand-written PyTorch model with softmax
attention (the engine's overhead), and this device's own matmul rate, measured in the same run.
Prints one JSON object."""

import json
import math
import sys
import time

from . import require_torch


def matmul_rate(torch, device, n):
    """FLOP/s of one n×n×n float32 matmul, best of a few repeats."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    best = math.inf
    for _ in range(5):
        sync(torch, device)
        t0 = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def sync(torch, device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class PlainGPT:
    """The same shapes with softmax attention written out by hand: the floor an engine is measured against."""

    def __init__(self, torch, cfg, device):
        F = torch.nn.functional
        V, T, D, L = cfg["vocabSize"], cfg["seqLen"], cfg["dModel"], cfg["nLayers"]
        self.torch, self.F, self.cfg = torch, F, cfg
        p = lambda *shape: torch.nn.Parameter(torch.randn(*shape, device=device) * 0.02)
        self.tok, self.pos = p(V, D), p(T, D)
        self.layers = [dict(g1=torch.nn.Parameter(torch.ones(D, device=device)), b1=torch.nn.Parameter(torch.zeros(D, device=device)),
                            qkv=p(D, 3 * D), out=p(D, D), ob=torch.nn.Parameter(torch.zeros(D, device=device)),
                            g2=torch.nn.Parameter(torch.ones(D, device=device)), b2=torch.nn.Parameter(torch.zeros(D, device=device)),
                            w1=p(D, 4 * D), c1=torch.nn.Parameter(torch.zeros(4 * D, device=device)), w2=p(4 * D, D), c2=torch.nn.Parameter(torch.zeros(D, device=device)))
                       for _ in range(L)]
        self.gf, self.bf = torch.nn.Parameter(torch.ones(D, device=device)), torch.nn.Parameter(torch.zeros(D, device=device))
        self.params = [self.tok, self.pos, self.gf, self.bf] + [v for layer in self.layers for v in layer.values()]
        self.mask = torch.tril(torch.ones(T, T, device=device, dtype=torch.bool))
        self.opt = torch.optim.AdamW(self.params, lr=1e-3)

    def step(self, ids, targets):
        torch, F, cfg = self.torch, self.F, self.cfg
        B, T = ids.shape
        D, H = cfg["dModel"], cfg["nHeads"]
        x = self.tok[ids] + self.pos[:T]  # (B, T, D)
        for w in self.layers:
            h = F.layer_norm(x, (D,), w["g1"], w["b1"])
            q, k, v = (h @ w["qkv"]).split(D, dim=-1)  # each (B, T, D)
            q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d)
            att = (q @ k.transpose(-1, -2)) / math.sqrt(D // H)  # (B, H, T, T)
            att = torch.softmax(att.masked_fill(~self.mask[:T, :T], float("-inf")), dim=-1)
            y = (att @ v).transpose(1, 2).reshape(B, T, D)  # (B, T, D)
            x = x + y @ w["out"] + w["ob"]
            h = F.layer_norm(x, (D,), w["g2"], w["b2"])
            x = x + F.gelu(h @ w["w1"] + w["c1"], approximate="tanh") @ w["w2"] + w["c2"]
        logits = F.layer_norm(x, (D,), self.gf, self.bf) @ self.tok.t()  # (B, T, V)
        loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(-1))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return loss.detach()


def timed(torch, device, step, steps, warm=2):
    for i in range(warm):
        step(i)
    sync(torch, device)
    t0 = time.perf_counter()
    for i in range(warm, warm + steps):
        step(i)
    sync(torch, device)
    return 1000 * (time.perf_counter() - t0) / steps


def main(argv):
    torch = require_torch()
    with open(argv[0], encoding="utf-8") as f:
        spec = json.load(f)
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    from .train import Trainer

    device = torch.device("cuda" if spec.get("device", "auto") in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
    n = 4096 if device.type == "cuda" else 512
    # The device's rate is measured again after every size and the best kept: on a shared machine one
    # reading taken at a busy moment would make every fraction of it too high.
    out = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "torch": torch.__version__,
           "matmulFlops": matmul_rate(torch, device, n), "sizes": []}
    for size in spec["sizes"]:
        job = {**spec["job"], "graph": size["graph"], "device": device.type,
               "model": {**spec["job"]["model"], "dModel": size["dModel"], "nLayers": size["nLayers"], "nHeads": size["nHeads"]}}
        trainer = Trainer(job)
        engine_ms = timed(torch, device, trainer.train_step, spec["steps"])
        plain = PlainGPT(torch, job["model"], device)
        batch = trainer._batch(0)
        plain_ms = timed(torch, device, lambda i: plain.step(*batch), spec["steps"])
        out["sizes"].append({"name": size["name"], "engineMs": engine_ms, "plainMs": plain_ms, "params": trainer.model.param_counts()})
        del trainer, plain
        out["matmulFlops"] = max(out["matmulFlops"], matmul_rate(torch, device, n))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
