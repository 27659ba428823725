"""llama.cpp reads Gemma 3 edits applied by `wilke apply` (issue #14).

For each of the first --facts facts of samples/gemma3_facts.jsonl and each of --methods (default ROME
and WilKE, its fast scan): `wilke edit` on the Gemma 3 270M GGUF (the fact alone; C from 4,096 sampled
tokens, cached, as Gemma3EditTests), `wilke apply` into a copy, then llama.cpp (the `xllamacpp` wheel,
in-process; its server binds only to 127.0.0.1) loads the copy and must answer the fact's prompt with the
new target's first token, where on the original file it answered the true one; its top token must be the
one `wilke ask --patch` gives on the original. Last, `wilke revert` of each method's first edit must give
back the original SHA-256.
Prints a JSON summary; exits non-zero on any failure.

Usage (from the repo root): python samples/reference/check_gemma3_llamacpp.py --bin .build/release/wilke [--model M]
"""
import argparse, json, os, sys, tempfile

from check_llamacpp import LlamaCpp, sha256, wilke

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release/wilke")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/wilke/models/gemma-3-270m-q4_k_m.gguf"))
    ap.add_argument("--facts", type=int, default=10, help="how many facts of samples/gemma3_facts.jsonl")
    ap.add_argument("--methods", nargs="+", default=["rome", "wilke"], choices=["rome", "wilke"])
    a = ap.parse_args()
    with open(os.path.join(ROOT, "samples", "gemma3_facts.jsonl")) as f:
        facts = [json.loads(l) for l in f if l.startswith("{")][: a.facts]
    original = sha256(a.model)
    base = LlamaCpp(a.model)
    out = {"model": os.path.basename(a.model), "facts": [], "revert_sha256_equal": {}}
    with tempfile.TemporaryDirectory() as d:
        for m, (i, fact) in ((m, f) for m in a.methods for f in enumerate(facts)):
            prompt = fact["prompt"].replace("{}", fact["subject"])
            req, patch, edited, back = (os.path.join(d, f"{m}{i}{n}") for n in ("req.jsonl", ".wpatch", ".gguf", "back.gguf"))
            with open(req, "w") as f:
                f.write(json.dumps(fact) + "\n")
            # 4,096 statistics tokens, as Gemma3EditTests: the same cached files serve both.
            wilke(["edit", a.model, "--requests", req, "--method", m, "--stats-tokens", "4096", "-o", patch], a.bin)
            wilke(["apply", a.model, patch, "-o", edited], a.bin)
            before = base.top(prompt, 1)[0]
            lc = LlamaCpp(edited)
            after = lc.top(prompt, 1)[0]
            del lc
            ours = json.loads(wilke(["ask", a.model, prompt, "-n", "0", "--top", "1", "--json", "--patch", patch], a.bin))["next_tokens"][0]
            layer = json.loads(wilke(["show", patch, "--json"], a.bin))["steps"][0]["edits"][0]["layer"]
            row = {"method": m, "layer": layer, "prompt": prompt, "target_new": fact["target_new"], "target_true": fact["target_true"],
                   "llamacpp_before": [before[0], round(before[1], 4)], "llamacpp_after": [after[0], round(after[1], 4)],
                   "wilke_after": [ours["piece"], round(ours["probability"], 4)]}
            out["facts"].append(row)
            print(json.dumps(row), file=sys.stderr)
            assert fact["target_true"].startswith(before[0].strip()) and before[0].strip(), row
            assert fact["target_new"].startswith(after[0].strip()) and after[0].strip(), row
            assert after[0] == ours["piece"], row
            if i == 0:
                wilke(["revert", edited, patch, "-o", back], a.bin)
                out["revert_sha256_equal"][m] = sha256(back) == original
                assert out["revert_sha256_equal"][m]
            os.remove(edited)
    print(json.dumps(out, indent=2))
    print(f"check_gemma3_llamacpp: OK ({len(facts)} facts x {' and '.join(a.methods)})", file=sys.stderr)


if __name__ == "__main__":
    main()
