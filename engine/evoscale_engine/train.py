"""Trains one model size with a traced attention graph, as evaluator/train.ts does: seeded init (or
weights exported from tfjs), the same token files and batches, AdamW with warmup and schedule,
global-norm clipping, periodic validation, atomic checkpoints and exact resume.

One loop you can read: batch → forward → loss → backward → clip → step. Loss values stay on the
device until an evaluation or progress point, so a GPU step never waits for the host."""

import contextlib
import hashlib
import json
import math
import os
import struct
import time

import numpy as np
import torch

from . import Diverged, EngineError
from .graph import check_graph, load_graph
from .model import TransformerLM, seed_for

PRECISIONS = ("fp32", "tf32", "bf16")
# torch.compile's modes the engine takes: `compile: true` is "default"; "reduce-overhead" replays the
# compiled forward and backward as CUDA graphs (on CUDA; elsewhere it is plain compilation).
COMPILE_MODES = ("default", "reduce-overhead")
TOKEN_MAGIC = b"EVOTOKv1"
# Checkpoints hold tensors, numbers and strings, so torch 2.x reads them weights-only (no pickled code runs;
# 2.6 made it the default). 1.13's weights-only reader cannot read a float (the curve's losses).
WEIGHTS_ONLY = int(torch.__version__.split(".")[0]) >= 2


# ---- data: evaluator/data/token-file.ts and evaluator/train.ts trainingBatch, value for value.

def load_tokens(path):
    with open(path, "rb") as f:
        buf = f.read()
    width, count = struct.unpack_from("<II", buf, 8) if len(buf) >= 16 else (0, 0)
    if buf[:8] != TOKEN_MAGIC or width not in (2, 4) or len(buf) != 16 + count * width:
        raise EngineError(f"{path} is not a complete evoscale token file")
    return np.frombuffer(buf, dtype="<u2" if width == 2 else "<u4", count=count, offset=16).astype(np.int64)


def mulberry32(seed):
    """core/random.ts: the same uniform draws in [0, 1) from the same 32-bit state."""
    state = seed & 0xFFFFFFFF

    def imul(a, b):
        return (a * b) & 0xFFFFFFFF

    def draw():
        nonlocal state
        state = (state + 0x6D2B79F5) & 0xFFFFFFFF
        t = state
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return draw


def training_batch(tokens, step, seed, batch, T):
    """The windows of step `step`: a function of (seed, step) alone, so resume needs no RNG state."""
    rand = mulberry32(seed_for(seed, f"batch:{step}"))
    span = len(tokens) - T - 1
    starts = [math.floor(rand() * span) for _ in range(batch)]
    ids = np.stack([tokens[s:s + T] for s in starts])  # (B, T)
    targets = np.stack([tokens[s + 1:s + T + 1] for s in starts])  # (B, T)
    return ids, targets


def learning_rate_at(step, cfg):
    lr, warmup, steps = cfg["learningRate"], cfg["warmupSteps"], cfg["steps"]
    if step < warmup:
        return lr * (step + 1) / warmup
    if cfg["schedule"] == "constant":
        return lr
    progress = min(1, (step - warmup) / max(1, steps - warmup))
    floor = lr * cfg["minLrRatio"]
    frac = 0.5 * (1 + math.cos(math.pi * progress)) if cfg["schedule"] == "cosine" else 1 - progress
    return floor + (lr - floor) * frac


# ---- weights exported from tfjs (the EVOCKPT1 layout of evaluator/train.ts).

def read_tfjs_weights(path):
    """Parameters by name from an EVOCKPT1 file (a tfjs checkpoint or an exported initial state)."""
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:8] != b"EVOCKPT1":
        raise EngineError(f"{path} is not an evoscale tfjs checkpoint")
    (length,) = struct.unpack_from("<I", buf, 8)
    header = json.loads(buf[12:12 + length])
    data = np.frombuffer(buf, dtype="<f4", offset=12 + length)
    out = {}
    for e in header["tensors"]:
        if e["key"].startswith("param:"):
            out[e["key"][len("param:"):]] = torch.from_numpy(data[e["offset"]:e["offset"] + e["size"]].copy()).reshape(e["shape"])
    return out


# ---- checkpoints: model, optimizer, step and curve in one file, replaced atomically.

def job_hash(job, graph):
    text = json.dumps([graph["hash"], job["model"], job["training"], job["seed"]], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_checkpoint(path, state):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # a crash leaves the old checkpoint or the new one, never half of one


def load_checkpoint(path, expected_hash):
    if not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=WEIGHTS_ONLY)
    except Exception as err:  # a foreign or truncated file
        raise EngineError(f"checkpoint {path} is not a torch engine checkpoint ({err})") from None
    if not isinstance(state, dict) or state.get("jobHash") != expected_hash:
        raise EngineError(f"checkpoint {path} belongs to a different training job; delete it to start over")
    return state


# ---- the loop.

def make_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError("device cuda was asked for, but this torch sees no CUDA device")
    return torch.device(name)


def autocast(device, precision):
    if precision not in PRECISIONS:
        raise EngineError(f"unknown precision {precision!r} (expected {', '.join(PRECISIONS)})")
    if device.type == "cuda":
        # The one TF32 switch both 1.13 and 2.x have: torch 2.9+ objects to mixing its legacy
        # allow_tf32 flags with the fp32_precision ones that torch.compile reads. The model has
        # matmuls only (no convolutions), so cuDNN's flag does not matter.
        torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def compile_mode(value):
    """The job's `compile` (false, true or a mode of COMPILE_MODES) as a mode name, None when uncompiled."""
    if value in (None, False):
        return None
    mode = "default" if value is True else value
    if mode not in COMPILE_MODES:
        raise EngineError(f"unknown compile mode {mode!r} (expected true or one of {', '.join(COMPILE_MODES)})")
    if not hasattr(torch, "compile"):
        raise EngineError(f"torch.compile was asked for, but PyTorch {torch.__version__} has none (it needs 2.x)")
    return mode


class Trainer:
    """One training job (the fields of evaluator/train.ts TrainJob, with `graph` a traced graph file)."""

    def __init__(self, job, on_progress=lambda p: None):
        self.job = job
        self.on_progress = on_progress
        self.device = make_device(job.get("device", "auto"))
        self.precision = job.get("precision", "fp32")
        self.autocast = autocast(self.device, self.precision)
        model, tr = job["model"], job["training"]
        self.graph = check_graph(load_graph(job["graph"]), {"batch": tr["batchSize"], "seqLen": model["seqLen"], "dModel": model["dModel"], "nHeads": model["nHeads"]})
        self.train_tokens = load_tokens(job["trainPath"])
        self.val_tokens = load_tokens(job["valPath"])
        T = model["seqLen"]
        if len(self.train_tokens) < T + 2 or len(self.val_tokens) < T + 2:
            raise EngineError(f"the corpus is too small for sequence length {T}")
        self.model = TransformerLM(model, self.graph, job["seed"], self.device)
        if job.get("initWeights"):
            self._load_weights(read_tfjs_weights(job["initWeights"]))
        named = self.model.named_weights()
        # Decay matrices only; gains, biases and vectors are left alone (evaluator/optimizer.ts).
        groups = [
            {"params": [p for _, p in named if p.dim() >= 2], "weight_decay": tr["weightDecay"]},
            {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0},
        ]
        self.opt = torch.optim.AdamW(groups, lr=tr["learningRate"], betas=(tr["beta1"], tr["beta2"]), eps=1e-8)
        self.params = [p for _, p in named]
        self.compile_mode = compile_mode(job.get("compile"))
        self.loss_fn = torch.compile(self.model.token_losses, mode=self.compile_mode) if self.compile_mode else self.model.token_losses

    def _load_weights(self, weights):
        for name, p in self.model.named_weights():
            w = weights.get(name)
            if w is None or list(w.shape) != list(p.shape):
                raise EngineError(f"initial weights have no tensor {name} of shape {list(p.shape)}")
            with torch.no_grad():
                p.copy_(w)

    def _train_step(self, ids, targets, lr, step):
        tr = self.job["training"]
        # Dropout draws are seeded by (seed, step): a resumed run repeats them without saved RNG state.
        torch.manual_seed(seed_for(self.job["seed"], f"dropout:{step}"))
        with self.autocast:
            loss = self.loss_fn(ids, targets, True).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.params]
        norm = torch.sqrt(sum(torch.sum(torch.square(g.float())) for g in grads))
        if tr["gradClip"] > 0:
            # scale = clip / max(norm, clip): 1 under the limit, without a device→host read.
            scale = tr["gradClip"] / torch.clamp(norm, min=tr["gradClip"])
            for g in grads:
                g.mul_(scale)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        return loss.detach()

    def train_step(self, step):
        """One optimizer step on step `step`'s batch at its scheduled rate; the loss stays on the device."""
        ids, targets = self._batch(step)
        return self._train_step(ids, targets, learning_rate_at(step, self.job["training"]), step)

    def _batch(self, step):
        tr, T = self.job["training"], self.job["model"]["seqLen"]
        ids, targets = (torch.from_numpy(a) for a in training_batch(self.train_tokens, step, self.job["seed"], tr["batchSize"], T))
        if self.device.type == "cuda":
            # From pinned memory the copy is asynchronous: no wait for the GPU each step, so the host draws
            # the next batch while the device trains on this one.
            return ids.pin_memory().to(self.device, non_blocking=True), targets.pin_memory().to(self.device, non_blocking=True)
        return ids, targets

    @torch.no_grad()
    def validation_loss(self):
        """Mean loss over the first evalTokens of the split in fixed windows (evaluator/train.ts). A short
        last batch is padded to the traced batch size with repeats and only its real rows counted: rows
        are independent (validation checks it)."""
        T, B = self.job["model"]["seqLen"], self.job["training"]["batchSize"]
        val = self.val_tokens
        windows = max(1, min((len(val) - 1) // T, self.job["training"]["evalTokens"] // T))
        total = torch.zeros((), device=self.device)
        for w0 in range(0, windows, B):
            n = min(B, windows - w0)
            rows = [w0 + min(b, n - 1) for b in range(B)]
            ids = torch.from_numpy(np.stack([val[r * T:r * T + T] for r in rows])).to(self.device)  # (B, T)
            targets = torch.from_numpy(np.stack([val[r * T + 1:r * T + T + 1] for r in rows])).to(self.device)  # (B, T)
            with self.autocast:
                per_row = self.model.token_losses(ids, targets, False).mean(dim=1)  # (B)
            total += per_row[:n].sum()
        return float(total) / windows

    def state_hash(self):
        """sha256 of every weight's bytes: equal runs end with equal hashes."""
        h = hashlib.sha256()
        for _, p in self.model.named_weights():
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    def peak_bytes(self):
        """On CUDA the allocator's peak; on CPU, which keeps no such count, weights and AdamW state only."""
        if self.device.type == "cuda":
            return int(torch.cuda.max_memory_allocated(self.device))
        return 3 * 4 * sum(p.numel() for p in self.params)

    def export_weights(self):
        return {name: p.detach().cpu() for name, p in self.model.named_weights()}

    def run(self):
        job, tr = self.job, self.job["training"]
        steps, eval_every, ckpt_every = tr["steps"], tr["evalEvery"], tr["checkpointEvery"]
        started = time.time()
        expected = job_hash(job, self.graph)
        resumed = load_checkpoint(job["checkpointPath"], expected)
        curve, start = [], 0
        if resumed:
            self.model.load_state_dict(resumed["model"])
            self.opt.load_state_dict(resumed["optimizer"])
            curve, start = resumed["curve"], resumed["step"]
        self.on_progress({"event": "start", "step": start, "steps": steps, "lr": learning_rate_at(start, tr), "resumedFromStep": start})
        pending = []  # (step, loss on the device) since the last read
        losses = []
        step_seconds = 0.0
        first_step_seconds = None
        curve_every = max(1, steps // 50)
        for step in range(start, steps):
            t0 = time.time()
            lr = learning_rate_at(step, tr)
            pending.append((step + 1, self.train_step(step)))
            done = step + 1
            is_eval = done % eval_every == 0 or done == steps
            is_ckpt = ckpt_every > 0 and done % ckpt_every == 0 and done < steps
            # Between evaluations the curve keeps the train loss, about 50 points a training (as tfjs's).
            is_point = not is_eval and done % curve_every == 0
            if is_eval or is_ckpt or is_point:
                values = torch.stack([l for _, l in pending]).float().cpu().tolist()  # the one host read
                losses += [(s, v) for (s, _), v in zip(pending, values)]
                pending = []
                for s, v in losses[-len(values):]:
                    if not math.isfinite(v):
                        raise Diverged(f"training diverged: the training loss became {v} at step {s}")
            step_seconds += time.time() - t0
            if is_point:
                curve.append({"step": done, "trainLoss": losses[-1][1]})
            if first_step_seconds is None:
                first_step_seconds = time.time() - t0  # with torch.compile: mostly compile time
            if is_eval:
                val_loss = self.validation_loss()
                if not math.isfinite(val_loss):
                    raise Diverged(f"training diverged: the validation loss became {val_loss} at step {done}")
                curve.append({"step": done, "trainLoss": losses[-1][1], "valLoss": val_loss})
                self.on_progress({"event": "eval", "step": done, "steps": steps, "trainLoss": losses[-1][1], "valLoss": val_loss, "lr": lr, "resumedFromStep": start})
            if is_ckpt:
                save_checkpoint(job["checkpointPath"], {"jobHash": expected, "step": done, "curve": curve, "model": self.model.state_dict(), "optimizer": self.opt.state_dict()})
                self.on_progress({"event": "checkpoint", "step": done, "steps": steps, "trainLoss": losses[-1][1], "lr": lr, "resumedFromStep": start})
        return {
            "valLoss": next(p["valLoss"] for p in reversed(curve) if "valLoss" in p),
            "finalTrainLoss": losses[-1][1] if losses else curve[-1]["trainLoss"],
            "steps": steps,
            "params": self.model.param_counts(),
            "backend": f"torch-{self.device.type}",
            "curve": curve,
            "resumedFromStep": start,
            "wallSeconds": time.time() - started,
            "msPerStep": 1000 * step_seconds / max(1, steps - start),
            "trainLosses": [v for _, v in losses],
            "stateHash": self.state_hash(),
            "peakBytes": self.peak_bytes(),
            "precision": self.precision,
            "compiled": self.compile_mode is not None,
            "firstStepSeconds": first_step_seconds,
        }
