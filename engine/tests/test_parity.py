"""The torch engine against tfjs: kernels, traced graphs and 20-step training runs reproduce the
references test/engine.test.ts wrote (EVOSCALE_ENGINE_FIXTURES), and a killed run resumes exactly."""

import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import unittest

import torch

from evoscale_engine import EngineError
from evoscale_engine.graph import GraphProgram, check_graph
from evoscale_engine.kernels import KERNELS
from evoscale_engine.train import Trainer

torch.set_num_threads(1)
FIXTURES = os.environ.get("EVOSCALE_ENGINE_FIXTURES")
if FIXTURES:
    with open(FIXTURES, encoding="utf-8") as f:
        REFS = json.load(f)
else:
    REFS = None
ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

KERNEL_TOL = 1e-5  # relative to the largest reference magnitude of each tensor
GRAPH_TOL = 1e-4  # a whole graph sums many kernels' rounding
LOSS_TOL = 1e-4  # nats, absolute


def tensor(values, shape):
    return torch.tensor(values, dtype=torch.float32).reshape(shape)


def assert_close(case, got, want, tol, what):
    got = got.detach().double().reshape(-1)
    want = torch.tensor(want, dtype=torch.float64).reshape(-1)
    scale = max(float(want.abs().max()) if want.numel() else 0.0, 1e-6)
    err = float((got - want).abs().max()) / scale if want.numel() else 0.0
    case.assertLessEqual(err, tol, f"{what}: relative error {err:.3g} > {tol}")


@unittest.skipUnless(REFS, "EVOSCALE_ENGINE_FIXTURES names no reference file (run from npm test)")
class KernelParity(unittest.TestCase):
    def test_the_engine_implements_exactly_the_supported_kernels(self):
        self.assertEqual(sorted(KERNELS), sorted(REFS["supported"]))

    def test_every_supported_kernel_has_a_reference_case(self):
        self.assertEqual(sorted({c["kernel"] for c in REFS["kernels"]}), sorted(REFS["supported"]))

    def test_forward_and_gradients_match_tfjs_within_1e_5(self):
        for i, case in enumerate(REFS["kernels"]):
            with self.subTest(kernel=case["kernel"], case=i):
                xs = [tensor(inp["values"], inp["shape"]).requires_grad_() for inp in case["inputs"]]
                named = {inp["name"]: x for inp, x in zip(case["inputs"], xs)}
                out = KERNELS[case["kernel"]](named, case["attrs"])
                outs = out if isinstance(out, list) else [out]
                self.assertEqual(len(outs), len(case["outputs"]))
                for o, ref in zip(outs, case["outputs"]):
                    self.assertEqual(list(o.shape), ref["shape"])
                    assert_close(self, o, ref["values"], KERNEL_TOL, f"{case['kernel']} output")
                total = sum((o * tensor(r, o.shape)).sum() for o, r in zip(outs, case["cotangents"]))
                grads = torch.autograd.grad(total, xs)
                for inp, g, ref in zip(case["inputs"], grads, case["grads"]):
                    assert_close(self, g, ref, KERNEL_TOL, f"{case['kernel']} gradient of {inp['name']}")


@unittest.skipUnless(REFS, "EVOSCALE_ENGINE_FIXTURES names no reference file (run from npm test)")
class GraphParity(unittest.TestCase):
    def test_every_catalogue_graph_matches_tfjs_forward_and_backward(self):
        for ref in REFS["graphs"]:
            with self.subTest(program=ref["id"]):
                graph = check_graph(ref["graph"])
                s = graph["shape"]
                B, T, D = s["batch"], s["seqLen"], s["dModel"]
                x = tensor(ref["x"], [B, T, D]).requires_grad_()
                params = {}
                for p in graph["params"]:
                    shape = graph["nodes"][p["node"]]["out"]["shape"]
                    params[p["name"]] = tensor(ref["params"][p["name"]], shape).requires_grad_()
                mask = torch.tril(torch.ones(T, T))
                y = GraphProgram(graph).run(x, mask, params)
                assert_close(self, y, ref["y"], GRAPH_TOL, "output")
                names = list(params)
                grads = torch.autograd.grad((y * tensor(ref["cotangent"], y.shape)).sum(), [x] + [params[n] for n in names], allow_unused=True)
                assert_close(self, grads[0], ref["gradX"], GRAPH_TOL, "gradient of x")
                for n, g in zip(names, grads[1:]):
                    got = g if g is not None else torch.zeros_like(params[n])
                    assert_close(self, got, ref["gradParams"][n], GRAPH_TOL, f"gradient of {n}")


def parity_job(ref, checkpoint_path, **training):
    return {
        "graph": ref["graphPath"], "model": ref["model"], "training": {**ref["training"], **training}, "seed": ref["seed"],
        "trainPath": ref["trainPath"], "valPath": ref["valPath"], "checkpointPath": checkpoint_path,
        "initWeights": ref["weightsPath"], "device": "cpu", "precision": "fp32", "threads": 1,
    }


@unittest.skipUnless(REFS, "EVOSCALE_ENGINE_FIXTURES names no reference file (run from npm test)")
class ModelParity(unittest.TestCase):
    def test_20_steps_give_tfjs_losses_within_1e_4_from_the_same_weights_and_data(self):
        with tempfile.TemporaryDirectory() as tmp:
            for ref in REFS["training"]:
                with self.subTest(program=ref["id"]):
                    result = Trainer(parity_job(ref, os.path.join(tmp, f"{ref['id']}.pt"))).run()
                    self.assertEqual(len(result["trainLosses"]), len(ref["trainLosses"]))
                    for step, (got, want) in enumerate(zip(result["trainLosses"], ref["trainLosses"]), 1):
                        self.assertLessEqual(abs(got - want), LOSS_TOL, f"step {step}: torch {got} vs tfjs {want}")
                    for got, want in zip([p["valLoss"] for p in result["curve"]], ref["valLosses"]):
                        self.assertLessEqual(abs(got - want), LOSS_TOL, f"validation: torch {got} vs tfjs {want}")


def engine_process(job_path):
    env = {**os.environ, "PYTHONPATH": ENGINE_DIR}
    return subprocess.Popen([sys.executable, "-m", "evoscale_engine", "train", job_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@unittest.skipUnless(REFS, "EVOSCALE_ENGINE_FIXTURES names no reference file (run from npm test)")
class Resume(unittest.TestCase):
    def test_a_run_killed_after_a_checkpoint_and_resumed_ends_bit_identical(self):
        ref = REFS["training"][0]
        with tempfile.TemporaryDirectory() as tmp:
            settings = {"steps": 60, "checkpointEvery": 5, "evalEvery": 20}
            straight = Trainer(parity_job(ref, os.path.join(tmp, "straight.pt"), **settings)).run()
            job_path = os.path.join(tmp, "job.json")
            with open(job_path, "w", encoding="utf-8") as f:
                json.dump(parity_job(ref, os.path.join(tmp, "killed.pt"), **settings), f)
            first = engine_process(job_path)
            killed_at = None
            for line in first.stdout:
                msg = json.loads(line)
                if msg.get("progress", {}).get("event") == "checkpoint":
                    os.kill(first.pid, signal.SIGKILL)
                    killed_at = msg["progress"]["step"]
                    break
            first.wait()
            first.stdout.close()
            first.stderr.close()
            self.assertEqual(first.returncode, -signal.SIGKILL)
            self.assertIsNotNone(killed_at)
            second = engine_process(job_path)
            out, err = second.communicate()
            self.assertEqual(second.returncode, 0, err)
            result = json.loads(out.strip().splitlines()[-1])["result"]
            self.assertGreaterEqual(result["resumedFromStep"], killed_at)
            self.assertLess(result["resumedFromStep"], 60)
            self.assertEqual(result["stateHash"], straight["stateHash"])
            self.assertEqual(result["curve"], straight["curve"])


@unittest.skipUnless(REFS, "EVOSCALE_ENGINE_FIXTURES names no reference file (run from npm test)")
class BadInput(unittest.TestCase):
    def graph(self):
        return copy.deepcopy(REFS["graphs"][0]["graph"])

    def test_a_kernel_without_a_torch_implementation_is_refused_by_name(self):
        g = self.graph()
        next(n for n in g["nodes"] if n["op"] == "Kernel")["kernel"] = "Atan2"
        with self.assertRaisesRegex(EngineError, "kernel Atan2, which the torch engine does not implement"):
            check_graph(g)

    def test_a_graph_traced_at_another_shape_is_refused(self):
        g = self.graph()
        shape = {**g["shape"], "dModel": g["shape"]["dModel"] * 2}
        with self.assertRaisesRegex(EngineError, "was traced at .* not at the training shape"):
            check_graph(g, shape)

    def test_the_command_line_reports_bad_input_in_one_line_with_status_2(self):
        ref = REFS["training"][0]
        with tempfile.TemporaryDirectory() as tmp:
            job = parity_job(ref, os.path.join(tmp, "c.pt"))
            job["model"] = {**job["model"], "dModel": job["model"]["dModel"] * 2}
            job_path = os.path.join(tmp, "job.json")
            with open(job_path, "w", encoding="utf-8") as f:
                json.dump(job, f)
            p = engine_process(job_path)
            out, err = p.communicate()
            self.assertEqual(p.returncode, 2)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn("not at the training shape", err)
            self.assertFalse(os.path.exists(job["checkpointPath"]))


@unittest.skipUnless(REFS, "EVOSCALE_ENGINE_FIXTURES names no reference file (run from npm test)")
class Settings(unittest.TestCase):
    def test_bf16_autocast_trains_close_to_fp32(self):
        ref = REFS["training"][0]
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = Trainer(parity_job(ref, os.path.join(tmp, "a.pt"), steps=5)).run()["trainLosses"]
            job = parity_job(ref, os.path.join(tmp, "b.pt"), steps=5)
            bf16 = Trainer({**job, "precision": "bf16"}).run()["trainLosses"]
        self.assertEqual(len(bf16), 5)
        # bfloat16 keeps 8 bits of mantissa: close to fp32, not equal.
        self.assertLess(max(abs(a - b) for a, b in zip(fp32, bf16)), 0.05)

    def test_an_unknown_precision_is_refused(self):
        ref = REFS["training"][0]
        with self.assertRaisesRegex(EngineError, "unknown precision 'fp8'"):
            Trainer({**parity_job(ref, "unused.pt"), "precision": "fp8"})

    @unittest.skipIf(torch.cuda.is_available(), "this machine has CUDA")
    def test_cuda_asked_for_without_a_visible_device_is_refused(self):
        ref = REFS["training"][0]
        with self.assertRaisesRegex(EngineError, "device cuda was asked for, but this torch sees no CUDA device"):
            Trainer({**parity_job(ref, "unused.pt"), "device": "cuda"})

    @unittest.skipIf(hasattr(torch, "compile"), "this torch has torch.compile")
    def test_compile_asked_for_on_a_torch_without_it_is_refused(self):
        ref = REFS["training"][0]
        with self.assertRaisesRegex(EngineError, "torch.compile was asked for"):
            Trainer({**parity_job(ref, "unused.pt"), "compile": True})

    @unittest.skipUnless(hasattr(torch, "compile"), "this torch has no torch.compile")
    def test_a_compiled_training_gives_the_tfjs_losses_within_1e_4(self):
        # reduce-overhead: CUDA graphs on a GPU; on this CPU the same compiled graph without them.
        ref = REFS["training"][0]
        with tempfile.TemporaryDirectory() as tmp:
            result = Trainer({**parity_job(ref, os.path.join(tmp, "c.pt")), "compile": "reduce-overhead"}).run()
        self.assertTrue(result["compiled"])
        for step, (got, want) in enumerate(zip(result["trainLosses"], ref["trainLosses"]), 1):
            self.assertLessEqual(abs(got - want), LOSS_TOL, f"step {step}: compiled torch {got} vs tfjs {want}")

    def test_an_unknown_compile_mode_is_refused(self):
        ref = REFS["training"][0]
        with self.assertRaisesRegex(EngineError, "unknown compile mode 'max-autotune'"):
            Trainer({**parity_job(ref, "unused.pt"), "compile": "max-autotune"})


if __name__ == "__main__":
    unittest.main()
