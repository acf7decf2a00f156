#!/usr/bin/env python3
"""The GPU check a person runs on a GPU machine (Python and torch only; no Node.js): per full-profile
size, ms/step at each precision over ~300 steps, peak GPU memory, and the first 10 losses on the GPU
against the same 10 steps on the CPU. Needs the folder `npm run gpu-check:prepare` writes.

Usage: python3 scripts/gpu-check.py [FOLDER] [--steps 300] [--compile] [--device cuda] [--sizes a,b]
"""

import argparse
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu-check"))
    ap.add_argument("--steps", type=int, default=300, help="timed steps per size and precision")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (bf16), with its compile time")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu, for a dry run of this script")
    ap.add_argument("--sizes", default="", help="comma-separated size names (default: all)")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    args = ap.parse_args()
    folder = os.path.abspath(args.folder)
    sys.path.insert(0, folder)
    try:
        from evoscale_engine import EngineError, require_torch
        torch = require_torch()
        from evoscale_engine.train import Trainer
    except ImportError as err:
        sys.exit(f"gpu-check: {folder} holds no engine package ({err}); run `npm run gpu-check:prepare` and copy its folder")
    except EngineError as err:
        sys.exit(f"gpu-check: {err}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit(f"gpu-check: torch {torch.__version__} sees no CUDA device")
    with open(os.path.join(folder, "check.json"), encoding="utf-8") as f:
        check = json.load(f)
    wanted = set(filter(None, args.sizes.split(",")))
    sizes = [s for s in check["sizes"] if not wanted or s["name"] in wanted]
    device_name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    print(f"gpu-check: {device_name}, torch {torch.__version__}, {check['framework']} baseline {check['programHash']}, "
          f"batch {check['training']['batchSize']} × {check['seqLen']} tokens, vocabulary {check['vocabSize']}")

    def job(size, device, precision, dropout, compile_=False):
        return {
            "graph": os.path.join(folder, size["graph"]),
            "model": {"vocabSize": check["vocabSize"], "seqLen": check["seqLen"], "dModel": size["dModel"], "nLayers": size["nLayers"], "nHeads": size["nHeads"], "dropout": dropout},
            "training": {**check["training"], "checkpointEvery": 0},
            "seed": check["seed"], "trainPath": os.path.join(folder, "train.tok"), "valPath": os.path.join(folder, "val.tok"),
            "checkpointPath": os.path.join(folder, "unused.pt"), "device": device, "precision": precision, "compile": compile_,
        }

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    rows = []
    runs = [(p, False) for p in args.precisions.split(",")] + ([("bf16", True)] if args.compile else [])
    for size in sizes:
        for precision, compile_ in runs:
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            trainer = Trainer(job(size, args.device, precision, check["dropout"], compile_))
            t0 = time.time()
            trainer.train_step(0)  # the first step: allocation, cuBLAS plans, and with --compile the compilation
            sync()
            first = time.time() - t0
            warm = min(10, args.steps)
            for step in range(1, warm):
                trainer.train_step(step)
            sync()
            t0 = time.time()
            for step in range(warm, warm + args.steps):
                loss = trainer.train_step(step)
            sync()
            ms = 1000 * (time.time() - t0) / args.steps
            peak = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else float("nan")
            tokens = check["training"]["batchSize"] * check["seqLen"] / (ms / 1000)
            label = precision + (" +compile" if compile_ else "")
            rows.append((size["name"], label, ms, tokens, peak, first, float(loss)))
            print(f"  {size['name']:<12} {label:<14} {ms:8.2f} ms/step  {tokens / 1e6:7.2f} M tokens/s  peak {peak:8.0f} MiB  "
                  f"first step {first:6.2f} s  loss after {warm + args.steps} steps {float(loss):.4f}", flush=True)
            del trainer

    print("first 10 losses, fp32 without dropout, from the same seeded weights and batches (CPU vs " + args.device + "):")
    for size in sizes:
        losses = {}
        for device in ("cpu", args.device):
            trainer = Trainer(job(size, device, "fp32", 0.0))
            losses[device] = [float(trainer.train_step(step)) for step in range(10)]
        cpu, dev = losses["cpu"], losses[args.device]
        worst = max(abs(a - b) for a, b in zip(cpu, dev))
        print(f"  {size['name']:<12} cpu {' '.join(f'{v:.4f}' for v in cpu)}")
        print(f"  {'':<12} {args.device:<3} {' '.join(f'{v:.4f}' for v in dev)}  max |Δ| {worst:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
