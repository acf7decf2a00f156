"""The fixed evoscale transformer (evaluator/model.ts) in PyTorch, top to bottom: token and position
embeddings, N blocks of LayerNorm → traced attention → out-projection → residual, LayerNorm → GELU
FFN (4×) → residual, final LayerNorm, head tied to the token embedding. Parameter names are the
tfjs model's, so weights move between the engines by name."""

import hashlib
import math

import torch
import torch.nn.functional as F

from .graph import GraphProgram

EMBEDDING_PARAMS = {"tok_emb", "pos_emb"}


def seed_for(base_seed, name):
    """evaluator/attention-runtime.ts seedFor: a stable 31-bit seed from a base seed and a name."""
    digest = hashlib.sha256(f"{base_seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def initial_value(shape, init, seed):
    """The init spec of ctx.param, drawn from torch's generator (same laws as tfjs, not the same draws)."""
    g = torch.Generator().manual_seed(seed)
    if init == "zeros":
        return torch.zeros(shape)
    if init == "ones":
        return torch.ones(shape)
    if init == "glorot":
        fan_out = shape[-1]
        fan_in = shape[-2] if len(shape) >= 2 else fan_out
        limit = math.sqrt(6 / (fan_in + fan_out))
        return (torch.rand(shape, generator=g) * 2 - 1) * limit
    if isinstance(init, dict) and "normal" in init:
        return torch.randn(shape, generator=g) * init["normal"]
    if isinstance(init, dict) and "constant" in init:
        return torch.full(shape, float(init["constant"]))
    raise ValueError(f"unknown init {init!r}")


class TransformerLM(torch.nn.Module):
    def __init__(self, cfg, graph, seed, device="cpu"):
        super().__init__()
        self.cfg = cfg
        self.attention = GraphProgram(graph, device)
        V, T, D, L = cfg["vocabSize"], cfg["seqLen"], cfg["dModel"], cfg["nLayers"]
        residual_std = 0.02 / math.sqrt(2 * L)  # GPT-2: scale residual projections with depth
        specs = [("tok_emb", [V, D], {"normal": 0.02}), ("pos_emb", [T, D], {"normal": 0.02})]
        for l in range(L):
            specs += [
                (f"L{l}.ln1.g", [D], "ones"), (f"L{l}.ln1.b", [D], "zeros"),
                (f"L{l}.attn_out.W", [D, D], {"normal": residual_std}), (f"L{l}.attn_out.b", [D], "zeros"),
                (f"L{l}.ln2.g", [D], "ones"), (f"L{l}.ln2.b", [D], "zeros"),
                (f"L{l}.ffn.W1", [D, 4 * D], {"normal": 0.02}), (f"L{l}.ffn.b1", [4 * D], "zeros"),
                (f"L{l}.ffn.W2", [4 * D, D], {"normal": residual_std}), (f"L{l}.ffn.b2", [D], "zeros"),
            ]
            specs += [(f"L{l}.attn.{name}", node["out"]["shape"], node["init"]) for name, node in self.attention.param_specs]
        specs += [("lnf.g", [D], "ones"), ("lnf.b", [D], "zeros")]
        self.names = sorted(name for name, _, _ in specs)  # the tfjs checkpoint order
        self.w = {}
        for name, shape, init in specs:
            p = torch.nn.Parameter(initial_value(shape, init, seed_for(seed, name)).to(device))
            self.register_parameter(name.replace(".", "__"), p)
            self.w[name] = p
        self.register_buffer("mask", torch.tril(torch.ones(T, T, device=device)), persistent=False)  # (T, T)

    def named_weights(self):
        """(name, parameter) sorted by tfjs name: the order of checkpoints and of AdamW's state."""
        return [(n, self.w[n]) for n in self.names]

    def _layer_norm(self, x, name):
        return F.layer_norm(x, (x.shape[-1],), self.w[f"{name}.g"], self.w[f"{name}.b"], eps=1e-5)

    def _dropout(self, x, training):
        return F.dropout(x, self.cfg["dropout"], training=True) if training and self.cfg["dropout"] > 0 else x

    def forward(self, ids, training):
        """Logits (B·T, V) for ids (B, T) int64."""
        B, T = ids.shape
        D, L = self.cfg["dModel"], self.cfg["nLayers"]
        w = self.w
        x = self._dropout(w["tok_emb"][ids] + w["pos_emb"][:T], training)  # (B, T, D)
        mask = self.mask[:T, :T]  # (T, T)
        for l in range(L):
            params = {name: w[f"L{l}.attn.{name}"] for name, _ in self.attention.param_specs}
            a = self.attention.run(self._layer_norm(x, f"L{l}.ln1"), mask, params)  # (B, T, D)
            proj = a.reshape(B * T, D) @ w[f"L{l}.attn_out.W"] + w[f"L{l}.attn_out.b"]  # (B·T, D)
            x = x + self._dropout(proj.view(B, T, D), training)  # (B, T, D)
            h = self._layer_norm(x, f"L{l}.ln2").reshape(B * T, D)  # (B·T, D)
            f1 = F.gelu(h @ w[f"L{l}.ffn.W1"] + w[f"L{l}.ffn.b1"], approximate="tanh")  # (B·T, 4D)
            f2 = f1 @ w[f"L{l}.ffn.W2"] + w[f"L{l}.ffn.b2"]  # (B·T, D)
            x = x + self._dropout(f2.view(B, T, D), training)  # (B, T, D)
        hf = self._layer_norm(x, "lnf").reshape(B * T, D)  # (B·T, D)
        return hf @ w["tok_emb"].t()  # tied head: (B·T, D) · (D, V) → (B·T, V)

    def token_losses(self, ids, targets, training):
        """Next-token cross-entropy in nats per position: (B, T)."""
        logits = self.forward(ids, training).float()  # (B·T, V)
        return F.cross_entropy(logits, targets.reshape(-1), reduction="none").view(ids.shape)  # (B, T)

    def param_counts(self):
        total = sum(p.numel() for p in self.w.values())
        non_embedding = sum(p.numel() for n, p in self.w.items() if n not in EMBEDDING_PARAMS)
        attention = sum(p.numel() for n, p in self.w.items() if ".attn." in n)
        return {"total": total, "nonEmbedding": non_embedding, "attention": attention}
