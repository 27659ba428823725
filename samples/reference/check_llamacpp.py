"""Interop check of `wilke apply` / `wilke revert` against gguf-py and llama.cpp (issue #4).

Makes a random rank-one patch on blk.15.ffn_down.weight of the SmolLM2 GGUF (‖Δ‖ = 1% of ‖W‖, with
`wilke dev gen-patch`), applies it, and checks that:
  1. gguf-py reads the edited file: same tensors, the edited one now F32, every other tensor's bytes
     identical, the edit's relative size about 1%, and the `wilke.patches` key holding the patch id;
  2. llama.cpp (the `xllamacpp` wheel, in-process; its server binds only to 127.0.0.1) loads the edited
     file and its next-token distribution agrees with `wilke ask --patch` on the original (top token
     equal, probability within 0.02);
  3. `wilke revert` gives back a file with the original SHA-256.
Prints a JSON summary; exits non-zero on any failure.

Usage (from the repo root): python samples/reference/check_llamacpp.py [--bin .build/debug/wilke] [--model M]
"""
import argparse, hashlib, json, math, os, subprocess, sys, tempfile

import numpy as np
from gguf import GGUFReader

TENSOR = "blk.15.ffn_down.weight"
PROMPT = "The capital of France is"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wilke(args, binary):
    r = subprocess.run([binary] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"wilke {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


class LlamaCpp:
    """One llama.cpp model loaded in-process (2 threads, 256 positions); greedy next tokens."""

    def __init__(self, model):
        import xllamacpp as xlc
        p = xlc.CommonParams()
        p.model.path = model
        p.n_ctx = 256
        p.n_parallel = 1
        p.cpuparams.n_threads = 2
        self.server = xlc.Server(p)

    def top(self, prompt, n=5):
        """The n most likely next tokens after prompt, as (token text, probability)."""
        r = self.server.handle_completions({"prompt": prompt, "n_predict": 1, "n_probs": n, "temperature": 0})
        top = r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        return [(t["token"], math.exp(t["logprob"])) for t in top]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/debug/wilke")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/wilke/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    a = ap.parse_args()
    out = {}
    with tempfile.TemporaryDirectory() as d:
        patch, edited, back = (os.path.join(d, n) for n in ("p.wpatch", "edited.gguf", "back.gguf"))
        pid = wilke(["dev", "gen-patch", a.model, "--tensor", TENSOR, "--relative", "0.01", "--seed", "4", "-o", patch], a.bin).split()[0]
        wilke(["apply", a.model, patch, "-o", edited], a.bin)

        # 1. gguf-py
        orig, ed = GGUFReader(a.model), GGUFReader(edited)
        assert [t.name for t in orig.tensors] == [t.name for t in ed.tensors], "tensor lists differ"
        same = 0
        for t0, t1 in zip(orig.tensors, ed.tensors):
            if t0.name == TENSOR:
                assert t1.tensor_type.name == "F32", t1.tensor_type.name
                from gguf.quants import dequantize
                w0 = dequantize(t0.data, t0.tensor_type).reshape(-1).astype(np.float64)
                w1 = np.asarray(t1.data, dtype=np.float64).reshape(-1)
                out["relative_change"] = float(np.linalg.norm(w1 - w0) / np.linalg.norm(w0))
                assert 0.005 < out["relative_change"] < 0.02, out["relative_change"]
            else:
                assert bytes(t0.data) == bytes(t1.data), f"{t0.name} changed"
                same += 1
        field = ed.fields["wilke.patches"]
        recorded = [bytes(field.parts[i]).decode() for i in field.data]
        assert recorded == [pid], recorded
        out["gguf_py"] = {"tensors": len(ed.tensors), "unchanged": same, "wilke.patches": recorded}

        # 2. llama.cpp loads it and agrees with wilke's in-memory patch
        lc = LlamaCpp(edited).top(PROMPT)
        ours = json.loads(wilke(["ask", a.model, PROMPT, "-n", "0", "--top", "5", "--json", "--patch", patch], a.bin))["next_tokens"]
        out["llamacpp_top5"] = [[t, round(p, 4)] for t, p in lc]
        out["wilke_top5"] = [[t["piece"], round(t["probability"], 4)] for t in ours]
        assert lc[0][0] == ours[0]["piece"], (lc[0], ours[0])
        assert abs(lc[0][1] - ours[0]["probability"]) < 0.02, (lc[0], ours[0])

        # 3. revert restores the file
        wilke(["revert", edited, patch, "-o", back], a.bin)
        out["revert_sha256_equal"] = sha256(back) == sha256(a.model)
        assert out["revert_sha256_equal"]
    print(json.dumps(out, indent=2))
    print("check_llamacpp: OK", file=sys.stderr)


if __name__ == "__main__":
    main()
