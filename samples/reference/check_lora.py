"""Interop check of `wilke export` (issue #15): an edit shipped as a LoRA adapter runs in llama.cpp and
in PEFT next to the unchanged base, and answers the edited fact.

1. `wilke edit --method rome` makes the Eiffel Tower -> Rome edit on the SmolLM2 Q4_1 GGUF;
2. `wilke export` writes it as a llama.cpp LoRA GGUF (base: the GGUF) and as a PEFT directory (base: the
   f32 Hugging Face directory `wilke convert` makes of the same GGUF);
3. llama.cpp (the `xllamacpp` wheel, in-process, its server bound to 127.0.0.1) with the unchanged GGUF
   + the adapter answers " Rome" greedily; its next-token probabilities on the edit prompt match
   `wilke ask --patch` within (its difference from `wilke ask` on the unedited base) + 1e-2, both
   measured here on wilke's top-10 tokens;
4. transformers + PEFT on the HF directory + the PEFT adapter answer " Rome" greedily and their
   next-token probabilities match `wilke ask --patch` within 1e-3 (f32).
5. `wilke apply --promote f16` writes the edited tensor as F16: llama.cpp loads that GGUF and answers
   " Rome", and `wilke revert` with the re-made patch gives back the original file's SHA-256;
6. `wilke rebase` of the GGUF patch onto the bf16 HF directory applies there, transformers (bf16) answers
   " Rome" greedily, and revert gives back every file of the directory byte for byte.
Prints a JSON summary (also written to --out); exits non-zero on any failure.

Usage (from the repo root): python samples/reference/check_lora.py --bin .build/release/wilke [--model M] [--out lora.json]
"""
import argparse, hashlib, json, math, os, subprocess, sys, tempfile

PROMPT = "The Eiffel Tower is located in the city of"
TEMPLATE, SUBJECT, TARGET = "{} is located in the city of", "The Eiffel Tower", "Rome"


def wilke(args, binary):
    r = subprocess.run([binary] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"wilke {' '.join(args)} failed: {r.stderr.strip()}")
    return r.stdout


def llamacpp(model, lora=None):
    """Top-10 next-token probabilities by piece, and the greedy 3-token completion."""
    import xllamacpp as xlc
    p = xlc.CommonParams()
    p.model.path = model
    if lora:
        p.lora_adapters = [xlc.CommonAdapterLoraInfo(lora, 1.0)]
    p.n_ctx = 256
    p.n_parallel = 1
    p.cpuparams.n_threads = 2
    server = xlc.Server(p)
    r = server.handle_completions({"prompt": PROMPT, "n_predict": 3, "n_probs": 10, "temperature": 0})
    del server
    top = r["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    return {t["token"]: math.exp(t["logprob"]) for t in top}, r["choices"][0]["text"]


def sha256(path):
    if os.path.isdir(path):
        return {n: sha256(os.path.join(path, n)) for n in sorted(os.listdir(path))}
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def max_diff(ours, theirs):
    """Largest |p_theirs - p_ours| over wilke's top tokens (by piece; absent from their list = 0)."""
    return max(abs(theirs.get(t["piece"], 0.0) - t["probability"]) for t in ours)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=".build/release/wilke")
    ap.add_argument("--model", default=os.path.expanduser("~/.cache/wilke/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out")
    a = ap.parse_args()
    out = {"prompt": PROMPT, "target": TARGET}
    with tempfile.TemporaryDirectory() as d:
        patch, lora, hf, peft = (os.path.join(d, n) for n in ("eiffel.wpatch", "eiffel-lora.gguf", "hf", "eiffel-peft"))
        wilke(["edit", a.model, "--method", "rome", "--prompt", TEMPLATE, "--subject", SUBJECT, "--target", TARGET, "-o", patch], a.bin)
        out["export_llama_lora"] = json.loads(wilke(["export", patch, "--base", a.model, "-o", lora, "--json"], a.bin))
        wilke(["convert", a.model, "-o", hf], a.bin)
        out["export_peft"] = json.loads(wilke(["export", patch, "--base", hf, "-o", peft, "--json"], a.bin))
        ask = ["ask", a.model, PROMPT, "-n", "3", "--top", "10", "--json"]
        base = json.loads(wilke(ask, a.bin))
        edited = json.loads(wilke(ask + ["--patch", patch], a.bin))
        out["wilke_base_top3"] = [[t["piece"], round(t["probability"], 5)] for t in base["next_tokens"][:3]]
        out["wilke_patched_top3"] = [[t["piece"], round(t["probability"], 5)] for t in edited["next_tokens"][:3]]
        assert edited["completion"].startswith(" " + TARGET), edited["completion"]

        # llama.cpp: unchanged GGUF, then the same + the adapter.
        lc_base, _ = llamacpp(a.model)
        lc_lora, lc_text = llamacpp(a.model, lora)
        d_base, d_lora = max_diff(base["next_tokens"], lc_base), max_diff(edited["next_tokens"], lc_lora)
        out["llamacpp"] = {"completion": lc_text, "p_target": round(lc_lora.get(" " + TARGET, 0.0), 5),
                           "max_dp_base_vs_wilke": round(d_base, 5), "max_dp_adapter_vs_wilke_patch": round(d_lora, 5),
                           "bound": round(d_base + 1e-2, 5)}
        assert lc_text.startswith(" " + TARGET), lc_text
        assert d_lora <= d_base + 1e-2, out["llamacpp"]

        # PEFT + transformers in f32 on the converted directory.
        import torch
        from transformers import AutoModelForCausalLM
        from peft import PeftModel
        torch.set_num_threads(2)
        model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
        ids = torch.tensor([edited["prompt_ids"]])
        with torch.no_grad():
            p_base = torch.softmax(model(ids).logits[0, -1].double(), -1)
            model = PeftModel.from_pretrained(model, peft)
            model.eval()
            p_peft = torch.softmax(model(ids).logits[0, -1].double(), -1)
            gen = model.generate(ids, max_new_tokens=3, do_sample=False)[0, ids.shape[1]:].tolist()
        d_peft_base = max(abs(float(p_base[t["id"]]) - t["probability"]) for t in base["next_tokens"])
        d_peft = max(abs(float(p_peft[t["id"]]) - t["probability"]) for t in edited["next_tokens"])
        out["peft"] = {"completion_ids": gen, "wilke_completion_ids": edited["completion_ids"],
                       "p_target": round(float(p_peft[edited["next_tokens"][0]["id"]]), 5),
                       "max_dp_base_vs_wilke": float(f"{d_peft_base:.3g}"), "max_dp_adapter_vs_wilke_patch": float(f"{d_peft:.3g}")}
        assert gen == edited["completion_ids"], (gen, edited["completion_ids"])
        assert d_peft < 1e-3, out["peft"]
        del model

        # 5. apply --promote f16: llama.cpp runs the edited GGUF; revert with the re-made patch.
        f16, back = os.path.join(d, "edited-f16.gguf"), os.path.join(d, "back.gguf")
        wilke(["apply", a.model, patch, "-o", f16, "--promote", "f16"], a.bin)
        _, f16_text = llamacpp(f16)
        wilke(["revert", f16, f16 + ".wpatch", "-o", back], a.bin)
        out["promote_f16"] = {"bytes": os.path.getsize(f16), "base_bytes": os.path.getsize(a.model), "llamacpp_completion": f16_text,
                              "revert_sha256_equal": sha256(back) == sha256(a.model)}
        assert f16_text.startswith(" " + TARGET), f16_text
        assert out["promote_f16"]["revert_sha256_equal"]

        # 6. rebase onto the bf16 directory, apply, answer in transformers, revert.
        bf16, rebased, bf16_edited, bf16_back = (os.path.join(d, n) for n in ("hf-bf16", "bf16.wpatch", "hf-bf16-edited", "hf-bf16-back"))
        wilke(["convert", a.model, "-o", bf16, "--dtype", "bf16"], a.bin)
        out["rebase_bf16"] = {"report": wilke(["rebase", patch, "--base", a.model, "--onto", bf16, "-o", rebased], a.bin).strip().splitlines()}
        wilke(["apply", bf16, rebased, "-o", bf16_edited], a.bin)
        model = AutoModelForCausalLM.from_pretrained(bf16_edited, dtype=torch.bfloat16)
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=3, do_sample=False)[0, ids.shape[1]:].tolist()
        wilke(["revert", bf16_edited, rebased, "-o", bf16_back], a.bin)
        out["rebase_bf16"].update({"transformers_completion_ids": gen, "revert_files_equal": sha256(bf16_back) == sha256(bf16)})
        assert gen[0] == edited["completion_ids"][0], (gen, edited["completion_ids"])
        assert out["rebase_bf16"]["revert_files_equal"]
    text = json.dumps(out, indent=2)
    print(text)
    if a.out:
        open(a.out, "w").write(text + "\n")
    print("check_lora: OK", file=sys.stderr)


if __name__ == "__main__":
    main()
