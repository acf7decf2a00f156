#!/usr/bin/env python3
"""The GPU check a person runs on a GPU machine (Python and torch only; no Node.js). Needs the folder
`npm run gpu-check:prepare` writes. In order, each phase within a time budget (10 minutes of device
time by default), with a plan printed first:
  1. per size, ms/step at each precision over ~300 steps, peak GPU memory, first step's time;
  2. one iteration: every size trained at once in its own process (a device worker with one slot per
     size), ms/step each, and the projected time of the profile's full step count;
  3. the first 10 losses on the device against the same 10 steps on the CPU;
  4. torch.compile and CUDA graphs (compile mode reduce-overhead), where this torch and device have them.
A variant that fails prints its error in one line and the check goes on with the next.

Usage: python3 scripts/gpu-check.py [FOLDER] [--device cuda] [--steps 300] [--sizes a,b] [--budget 570]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

SEED_HOURS = 7  # the seed prototype's full evaluation: 100k steps × 4 sizes, about 7 hours an iteration
TARGET_MIN = 20  # issue 11's target for one iteration on one GPU
COMPILE_GUESS_S = 60  # a compilation's time before any is measured (forward and backward, one size)
LAUNCH_GUESS_S = 20e-6  # eager PyTorch's host time per kernel, before any step is measured
WORKER_START_S = 20  # a size's process in phase 2: importing torch, a CUDA context, the model


def fail(message):
    sys.exit(f"gpu-check: {message}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", nargs="?", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gpu-check"))
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu, for a dry run of this script")
    ap.add_argument("--steps", type=int, default=300, help="timed steps per size and variant")
    ap.add_argument("--sizes", default="", help="comma-separated size names (default: all)")
    ap.add_argument("--precisions", default="fp32,tf32,bf16")
    ap.add_argument("--concurrent-steps", type=int, default=200, help="timed steps of each size in the one-iteration phase")
    ap.add_argument("--budget", type=float, default=570, help="seconds for the whole check; a phase that would overrun it is skipped")
    # One size's process in the one-iteration phase: its size, precision, and how many train at once.
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    started = time.time()
    folder = os.path.abspath(args.folder)
    if not os.path.isfile(os.path.join(folder, "check.json")):
        fail(f"{folder} holds no check.json; run `npm run gpu-check:prepare` and copy its folder here")
    if args.steps < 1 or args.concurrent_steps < 1:
        fail("--steps and --concurrent-steps must be at least 1")
    sys.path.insert(0, folder)
    try:
        from evoscale_engine import EngineError, require_torch
        torch = require_torch()
        from evoscale_engine.train import Trainer, save_checkpoint
    except ImportError as err:
        if err.name and err.name.startswith("evoscale_engine"):
            fail(f"{folder} holds no engine package ({err}); run `npm run gpu-check:prepare` and copy its folder")
        fail(f"the engine needs {err.name or err} besides torch ({err}); install it for this interpreter")
    except EngineError as err:
        fail(str(err))
    on_cuda = args.device.startswith("cuda")
    if on_cuda and not torch.cuda.is_available():
        fail(f"torch {torch.__version__} sees no CUDA device (use --device cpu for a dry run)")
    with open(os.path.join(folder, "check.json"), encoding="utf-8") as f:
        check = json.load(f)
    wanted = set(filter(None, args.sizes.split(",")))
    unknown = wanted - {s["name"] for s in check["sizes"]}
    if unknown:
        fail(f"no size {', '.join(sorted(unknown))} in check.json (it has {', '.join(s['name'] for s in check['sizes'])})")
    sizes = [s for s in check["sizes"] if not wanted or s["name"] in wanted]
    for s in check["sizes"]:
        with open(os.path.join(folder, s["graph"]), encoding="utf-8") as f:
            s["kernels"] = sum(1 for n in json.load(f)["nodes"] if n["op"] == "Kernel")
    precisions = args.precisions.split(",")
    tr = check["training"]
    B, T = tr["batchSize"], check["seqLen"]

    def job(size, device, precision, dropout, compile_=False, checkpoint="unused.pt"):
        return {
            "graph": os.path.join(folder, size["graph"]),
            "model": {"vocabSize": check["vocabSize"], "seqLen": T, "dModel": size["dModel"], "nLayers": size["nLayers"], "nHeads": size["nHeads"], "dropout": dropout},
            "training": {**tr, "checkpointEvery": 0},
            "seed": check["seed"], "trainPath": os.path.join(folder, "train.tok"), "valPath": os.path.join(folder, "val.tok"),
            "checkpointPath": os.path.join(folder, checkpoint), "device": device, "precision": precision, "compile": compile_,
        }

    def sync():
        if on_cuda:
            torch.cuda.synchronize()

    if args.worker:
        size = next(s for s in check["sizes"] if s["name"] == args.worker)
        return concurrent_worker(torch, lambda: Trainer(job(size, args.device, args.precision, check["dropout"])), save_checkpoint, sync, args)

    device_name = torch.cuda.get_device_name(0) if on_cuda else f"CPU ({torch.get_num_threads()} threads)"
    print(f"gpu-check: {device_name}, torch {torch.__version__}, {check.get('profile', 'full')} profile, {check['framework']} baseline "
          f"{check['programHash']}, batch {B} × {T} tokens, vocabulary {check['vocabSize']}", flush=True)

    # ---- the plan: every phase's cost from a simple model (kernel launches or FLOPs, whichever is slower),
    # replaced by measured step times as soon as phase 1 has them.
    cpu_rate = matmul_rate(torch, torch.device("cpu"), 512)
    device_rate = matmul_rate(torch, torch.device(args.device), 4096 if on_cuda else 512)
    guess = {s["name"]: guess_step_seconds(s, check, device_rate if on_cuda else cpu_rate, on_cuda) for s in sizes}
    cpu_step = {s["name"]: guess_step_seconds(s, check, cpu_rate, False) for s in sizes}
    warm = min(10, args.steps)
    variants = compile_variants(torch, on_cuda)
    runnable = [(label, mode) for label, mode, why in variants if not why]
    est = {
        "precisions": sum(len(precisions) * (args.steps + warm) * guess[s["name"]] for s in sizes),
        "iteration": WORKER_START_S + (args.concurrent_steps + min(10, args.concurrent_steps)) * sum(guess.values()),
        "losses": sum(10 * (guess[s["name"]] + cpu_step[s["name"]]) for s in sizes),
        "compile": sum(len(runnable) * (COMPILE_GUESS_S + (args.steps + warm) * guess[s["name"]]) for s in sizes),
    }
    print(f"plan (budget {args.budget:.0f} s; float32 matmul {device_rate / 1e9:.0f} GFLOP/s on {args.device}, {cpu_rate / 1e9:.0f} on the CPU):", flush=True)
    print(f"  1. {len(sizes)} sizes × {', '.join(precisions)}: {warm} + {args.steps} steps each, about {est['precisions']:.0f} s")
    print(f"  2. one iteration, {len(sizes)} processes at once: {min(10, args.concurrent_steps)} + {args.concurrent_steps} steps each, about {est['iteration']:.0f} s")
    print(f"  3. first 10 losses on the CPU and on {args.device}: about {est['losses']:.0f} s")
    print(f"  4. {', '.join(f'{label}' + (f' (skipped: {why})' if why else '') for label, _, why in variants)}: "
          f"about {est['compile']:.0f} s (compilations guessed at {COMPILE_GUESS_S} s each)")
    print(f"  in all about {sum(est.values()):.0f} s; a phase that no longer fits the budget is skipped", flush=True)

    def left():
        return args.budget - (time.time() - started)

    def affordable(estimate, what):
        if estimate <= left():
            return True
        print(f"  {what}: skipped, it would take about {estimate:.0f} s and {max(0, left()):.0f} s of the budget are left", flush=True)
        return False

    def time_variant(size, label, precision, compile_):
        """(ms/step, first step's seconds) of one size and variant; the first step (with compile, its compilation) timed apart."""
        if on_cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        trainer = Trainer(job(size, args.device, precision, check["dropout"], compile_))
        t0 = time.time()
        trainer.train_step(0)  # allocation, cuBLAS plans, and with compile the compilation
        sync()
        first = time.time() - t0
        t0 = time.time()
        for step in range(1, warm):  # with CUDA graphs: their warm-up and capture
            trainer.train_step(step)
        sync()
        warm_s = time.time() - t0
        t0 = time.time()
        for step in range(warm, warm + args.steps):
            loss = trainer.train_step(step)
        sync()
        ms = 1000 * (time.time() - t0) / args.steps
        peak = torch.cuda.max_memory_allocated() / 2**20 if on_cuda else float("nan")
        print(f"  {size['name']:<12} {label:<16} {ms:8.2f} ms/step  {B * T / ms / 1e3:7.2f} M tokens/s  peak {peak:8.0f} MiB  "
              f"first step {first:6.2f} s  next {warm - 1} {warm_s:6.2f} s  loss after {warm + args.steps} steps {float(loss):.4f}", flush=True)
        return ms, first

    def attempt(what, fn):
        """One variant: its failure is a line, never the end of the check."""
        try:
            return fn()
        except Exception as err:  # a broken variant must not cost the rest of the device run
            text = str(err).strip().splitlines()
            print(f"  {what}: failed: {type(err).__name__}: {text[0] if text else ''}", flush=True)
            return None

    print("1. ms/step per size and precision (eager):", flush=True)
    measured = {}  # (size, precision) → ms/step
    for size in sizes:
        for precision in precisions:
            estimate = (args.steps + warm) * (measured.get((size["name"], "fp32"), 1000 * guess[size["name"]]) / 1000)
            if affordable(estimate, f"{size['name']} {precision}"):
                timed = attempt(f"{size['name']} {precision}", lambda: time_variant(size, precision, precision, False))
                if timed:
                    measured[(size["name"], precision)] = timed[0]
    step_s = {s["name"]: min([ms for (n, _), ms in measured.items() if n == s["name"]], default=1000 * guess[s["name"]]) / 1000 for s in sizes}

    print("2. one iteration: every size at once, each in its own process (a device worker with one slot per size):", flush=True)
    fastest = fastest_precision(measured, precisions)
    if on_cuda:
        torch.cuda.empty_cache()  # phase 1's cached blocks: the sizes' processes need the memory
    if affordable(WORKER_START_S + (args.concurrent_steps + min(10, args.concurrent_steps)) * sum(step_s.values()), "one iteration"):
        attempt("one iteration", lambda: one_iteration(args, folder, sizes, fastest, check, on_cuda))

    print(f"3. first 10 losses, fp32 without dropout, from the same seeded weights and batches (CPU vs {args.device}):", flush=True)
    for size in sizes:
        if affordable(10 * (step_s[size["name"]] + cpu_step[size["name"]]), size["name"]):
            attempt(size["name"], lambda: compare_losses(torch, Trainer, job, size, args.device))

    print("4. torch.compile and CUDA graphs (bf16):", flush=True)
    compiles = []  # each compiled variant's first step: its compilation
    for label, mode, why in variants:
        if why:
            print(f"  {label}: skipped: {why}", flush=True)
            continue
        for size in sizes:
            if affordable(max(compiles, default=COMPILE_GUESS_S) + (args.steps + warm) * step_s[size["name"]], f"{size['name']} {label}"):
                timed = attempt(f"{size['name']} {label}", lambda: time_variant(size, label, "bf16", mode))
                if timed:
                    compiles.append(timed[1])
    print(f"gpu-check: done in {time.time() - started:.0f} s", flush=True)
    return 0


def compile_variants(torch, on_cuda):
    """(label, the engine's compile mode, why it is skipped or '') for each compiled variant."""
    no_compile = "" if hasattr(torch, "compile") else f"torch {torch.__version__} has no torch.compile (it needs 2.x)"
    no_graphs = no_compile or ("" if on_cuda else "CUDA graphs need a CUDA device")
    # CUDA graphs first: they are the variant issue 11 asks about, and the budget may not fit both.
    return [("bf16 +cudagraphs", "reduce-overhead", no_graphs), ("bf16 +compile", "default", no_compile)]


def fastest_precision(measured, precisions):
    """The precision with the least total ms/step over the sizes measured at every precision."""
    names = {n for n, _ in measured}
    complete = [n for n in names if all((n, p) in measured for p in precisions)]
    if not complete:
        return precisions[0]
    return min(precisions, key=lambda p: sum(measured[(n, p)] for n in complete))


def matmul_rate(torch, device, n):
    """FLOP/s of one n×n×n float32 matmul on the device, best of three."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def guess_step_seconds(size, check, rate, on_cuda):
    """A step's time before any is measured: kernel launches (on CUDA) or FLOPs at half the matmul rate."""
    D, L, V, T, B = size["dModel"], size["nLayers"], check["vocabSize"], check["seqLen"], check["training"]["batchSize"]
    params = V * D + T * D + L * 12 * D * D
    flops = 6 * params * B * T + 12 * L * B * T * T * D  # weights, plus the T² attention products
    compute = flops / (0.5 * rate)
    if not on_cuda:
        return compute
    launches = 3 * L * (size["kernels"] + 20) + 200  # the graph's kernels and the block's own, forward and backward; clipping, AdamW
    return max(compute, launches * LAUNCH_GUESS_S)


def compare_losses(torch, Trainer, job, size, device):
    losses = {}
    for where in ("cpu", device):
        trainer = Trainer(job(size, where, "fp32", 0.0))
        losses[where] = [float(trainer.train_step(step)) for step in range(10)]
    cpu, dev = losses["cpu"], losses[device]
    worst = max(abs(a - b) for a, b in zip(cpu, dev))
    print(f"  {size['name']:<12} cpu {' '.join(f'{v:.4f}' for v in cpu)}")
    print(f"  {'':<12} {device:<3} {' '.join(f'{v:.4f}' for v in dev)}  max |Δ| {worst:.2e}", flush=True)


def one_iteration(args, folder, sizes, precision, check, on_cuda):
    """Every size trained at once, each in its own process, from a common start: each size's ms/step under
    that load, and the iteration's projected time (the slowest size, with its evaluations and checkpoints)."""
    tr = check["training"]
    with tempfile.TemporaryDirectory() as tmp:
        procs = []
        for size in sizes:
            err = open(os.path.join(tmp, f"{size['name']}.err"), "w+", encoding="utf-8")
            cmd = [sys.executable, os.path.abspath(sys.argv[0]), folder, "--worker", size["name"], "--precision", precision,
                   "--device", args.device, "--steps", str(args.concurrent_steps), "--workers", str(len(sizes))]
            procs.append((size, subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True), err))
        try:
            results = run_workers(procs)
        finally:  # a failed size must not leave the others waiting, or training after the check has gone on
            for _, p, err in procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
                for f in (p.stdin, p.stdout, err):
                    f.close()
    total = tr["steps"]
    projected = []
    for size, r in results:
        seconds = total * r["ms"] / 1000 + (total // tr["evalEvery"]) * r["evalSeconds"] + (total // max(1, tr["checkpointEvery"])) * r["checkpointSeconds"]
        projected.append(seconds)
        print(f"  {size['name']:<12} {precision:<6} {r['ms']:8.2f} ms/step with {len(sizes)} at once  peak {r['peakMiB']:8.0f} MiB  "
              f"evaluation {r['evalSeconds']:.2f} s  checkpoint {r['checkpointSeconds']:.3f} s  → {total} steps in {seconds / 60:.1f} min", flush=True)
    worst = max(projected)
    target = f" (target ≤ {TARGET_MIN} min; the seed prototype: about {SEED_HOURS} h)" if check.get("profile", "full") == "full" else ""
    print(f"  one iteration ({len(sizes)} sizes × {total} steps, one seed each, at once): {worst / 60:.1f} min{target}", flush=True)
    seeds = check.get("seedCount", 1)
    if seeds > 1:  # each size's seeds in turn on its slot
        print(f"  with the {check.get('profile', 'full')} profile's {seeds} seeds per size: about {seeds * worst / 60:.1f} min", flush=True)


def run_workers(procs):
    """Waits until every size has warmed up, starts them together, and collects each one's figures."""
    def why(size, p, err):
        p.wait()
        err.seek(0)
        lines = err.read().strip().splitlines()
        return f"the {size['name']} process failed: {lines[-1] if lines else f'exit status {p.returncode}'}"

    for size, p, err in procs:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError(why(size, p, err))
    for _, p, _ in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for size, p, err in procs:
        line = p.stdout.readline()
        if not line.startswith("{"):
            raise RuntimeError(why(size, p, err))
        results.append((size, json.loads(line)))
    return results


def concurrent_worker(torch, make_trainer, save_checkpoint, sync, args):
    """One size's process in the one-iteration phase: warm up, say ready, wait for the common start, time the
    steps, then one evaluation and one checkpoint (their share of a full training)."""
    if not args.device.startswith("cuda"):
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // args.workers))  # the dry run: share the cores
    trainer = make_trainer()
    warm = min(10, args.steps)  # as in phase 1
    for step in range(warm):
        trainer.train_step(step)
    sync()
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.time()
    for step in range(warm, warm + args.steps):
        trainer.train_step(step)
    sync()
    ms = 1000 * (time.time() - t0) / args.steps
    t0 = time.time()
    trainer.validation_loss()
    eval_s = time.time() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        save_checkpoint(os.path.join(tmp, "c.pt"), {"model": trainer.model.state_dict(), "optimizer": trainer.opt.state_dict()})
        ckpt_s = time.time() - t0
    peak = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else float("nan")
    print(json.dumps({"ms": ms, "evalSeconds": eval_s, "checkpointSeconds": ckpt_s, "peakMiB": peak}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
