"""PyTorch CPU baseline timings on the real SmolLM2-135M, for comparison with the Swift port (`make bench`).

Run from the repository root:
    /root/.cache/wilke/venv/bin/python samples/reference/bench_torch.py [--only prefill,generate,rome,wilke]
        [--layer 4] [--runs 3] [--scan 15] [--cov identity|random] [--cov-tokens 4096] [--threads 2]
    /root/.cache/wilke/venv/bin/python samples/reference/bench_torch.py --gen-templates   # see CONTEXT

Prints one JSON object on stdout (progress goes to stderr):
    (every timed number also has a *_best / per-run variant: on a shared machine the minimum is the
    least contaminated by other processes)
    load_s                   GGUF load + dequantization to float32 (not part of any other number)
    prefill_tokens_per_s     one forward of a 22 x 16 token batch, logits at all positions (median of 3)
    generate_tokens_per_s    greedy model.generate of 32 new tokens with KV cache (median of 3)
    rome_edit_s              median wall time of one ROME edit at --layer over --runs runs (compute_u +
                             compute_v + right vector; the covariance is prepared before timing)
    rome_steps               Adam steps run by that edit; rome_loss_first/last: loss before/after
    rome_p_target_after      P(" Rome" | bare prompt) after applying the edit (sanity check)
    wilke_edit_s             one WilKE edit: scan layers 0..scan-1 + apply (1 run); wilke_layer, wilke_LA
The edit runs the batch of 21 rewriting prompts + the KL prompt as one right-padded batch, as kmeng01/rome
does, using samples/reference/rome_reference.py; the string-level index rule of ALGORITHM.md §2.2 is here.
"""
import argparse
import json
import os
import statistics
import sys
import time
import unicodedata

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rome_reference as rr  # noqa: E402

MODEL_DIR = os.path.expanduser("~/.cache/wilke/models")
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
REQUEST = {"prompt": "{} is located in the city of", "subject": "The Eiffel Tower", "target_new": " Rome"}

# ROME's context templates: "{}" + 20 samples generated once from this model with
# `--gen-templates` (generate_fast semantics, §2.1: from "<|endoftext|>", top-k 5 sampling, 10 samples of
# 4 new tokens and 10 of 9 new tokens, torch seed 0, "\n\n" -> " ", "<|endoftext|>" removed, NFKD,
# braces replaced by spaces) and hard-coded here so every run times the same prompts.
CONTEXT = [
    "{}",
    "-_m_. {}",
    "\n,-1. {}",
    "-_2_. {}",
    "-_12. {}",
    ", car industry is. {}",
    "\n-11. {}",
    "\n,_2. {}",
    "-_21. {}",
    ", car industry,. {}",
    "-_A.. {}",
    "-_n) is a common misspelling. {}",
    "_A_C2_C2_. {}",
    "- earthen, or wood-fired.\n. {}",
    "-_m_n = n - . {}",
    ", otherwise, it can be determined using. {}",
    "-_A(x_1,x. {}",
    "\n-\nThe first step in a data. {}",
    " - ,What are your. {}",
    "\n,-1801. The. {}",
    "-_m_x, _m_. {}",
]


def load(threads):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(threads)
    t = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(MODEL_DIR, gguf_file=MODEL_FILE)
    model = AutoModelForCausalLM.from_pretrained(MODEL_DIR, gguf_file=MODEL_FILE, dtype=torch.float32)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, tok, time.perf_counter() - t


def gen_templates(model, tok):
    torch.manual_seed(0)
    start = tok("<|endoftext|>", add_special_tokens=False).input_ids
    out = []
    for length, n in ((5, 10), (10, 10)):
        ids = torch.tensor([start] * n)
        gen = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=5, top_p=1.0,
                             temperature=1.0, max_new_tokens=length - len(start), min_new_tokens=length - len(start))
        for row in gen:
            s = unicodedata.normalize("NFKD", tok.decode(row))
            s = s.replace("\n\n", " ").replace("<|endoftext|>", "").replace("{", " ").replace("}", " ")
            out.append(s + ". {}")
    return out


def subject_last_index(tok, template, subject):
    """§2.2: prefix and word tokenized separately; a non-empty prefix loses its trailing space and the word
    gets a leading one."""
    i = template.index("{}")
    prefix = template[:i]
    word = subject
    if prefix:
        assert prefix.endswith(" "), template
        prefix = prefix[:-1]
        word = " " + subject.strip()
    return len(tok(prefix).input_ids) + len(tok(word).input_ids) - 1


def build_inputs(tok, req):
    target = tok(req["target_new"]).input_ids
    suffix = tok.decode(target[:-1])
    prompts = [c.format(req["prompt"]) for c in CONTEXT]
    s = req["subject"]
    rows = [tok(p.format(s) + suffix).input_ids for p in prompts]
    idxs = [subject_last_index(tok, p, s) for p in prompts]
    kl = "{} is a"
    inp = rr.RomeInputs(rows=rows, idxs=idxs, target=target, kl_row=tok(kl.format(s)).input_ids,
                        kl_idx=subject_last_index(tok, kl, s),
                        key_rows=[tok(p.format(s)).input_ids for p in prompts], key_idxs=idxs,
                        prompt_row=tok(req["prompt"].format(s)).input_ids,
                        prompt_idx=subject_last_index(tok, req["prompt"], s))
    inp.check()
    return inp


def covariance(model, layers, kind, n_tokens):
    """None (identity) or the key second moment over n_tokens random token ids (64-token sequences,
    seed 0) + a 1e-3 * mean-diagonal ridge; only meant to give the solve a realistic SPD matrix."""
    if kind == "identity":
        return {}
    projs = rr.model_parts(model)[1]
    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(0, model.config.vocab_size, (max(1, n_tokens // 64), 64), generator=g)
    sums = {l: 0.0 for l in layers}
    keys = {}
    hs = [projs[l].register_forward_pre_hook(lambda m, inp, l=l: keys.__setitem__(l, inp[0].reshape(-1, inp[0].shape[-1]).double()))
          for l in layers]
    with torch.no_grad():
        for b in range(0, len(seqs), 8):
            model(input_ids=seqs[b:b + 8], use_cache=False)
            for l in layers:
                sums[l] = sums[l] + keys[l].t() @ keys[l]
    for h in hs:
        h.remove()
    covs = {}
    for l in layers:
        m = sums[l] / seqs.numel()
        covs[l] = (m + 1e-3 * m.diagonal().mean() * torch.eye(m.shape[0], dtype=m.dtype)).float()
    return covs


def timed(fn, runs):
    times, last = [], None
    for _ in range(runs):
        t = time.perf_counter()
        last = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, last


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="prefill,generate,rome,wilke")
    ap.add_argument("--layer", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scan", type=int, default=15)
    ap.add_argument("--cov", choices=["identity", "random"], default="identity")
    ap.add_argument("--cov-tokens", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gen-templates", action="store_true")
    args = ap.parse_args()
    parts = set(args.only.split(","))

    model, tok, load_s = load(args.threads)
    if args.gen_templates:
        print(json.dumps(gen_templates(model, tok), indent=1))
        return
    res = {"threads": args.threads, "load_s": round(load_s, 3), "cov": args.cov}
    log("loaded in", load_s)

    if "prefill" in parts:
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, model.config.vocab_size, (22, 16), generator=g)
        with torch.no_grad():
            model(input_ids=ids, use_cache=False)   # warm-up
            med, times, _ = timed(lambda: model(input_ids=ids, use_cache=False).logits, 3)
        res["prefill_tokens_per_s"] = round(ids.numel() / med, 1)
        res["prefill_s"] = [round(t, 4) for t in times]
        res["prefill_tokens_per_s_best"] = round(ids.numel() / min(times), 1)
        log("prefill", res["prefill_tokens_per_s"], "tok/s")

    if "generate" in parts:
        ids = tok(REQUEST["prompt"].format(REQUEST["subject"]), return_tensors="pt").input_ids
        kw = dict(attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=32, min_new_tokens=32,
                  use_cache=True, pad_token_id=tok.eos_token_id)
        with torch.no_grad():
            model.generate(ids, **kw)   # warm-up
            med, times, out = timed(lambda: model.generate(ids, **kw), 3)
        new = out.shape[1] - ids.shape[1]
        res["generate_tokens_per_s"] = round(new / med, 2)
        res["generate_s"] = [round(t, 4) for t in times]
        res["generate_tokens_per_s_best"] = round(new / min(times), 2)
        res["generate_text"] = tok.decode(out[0, ids.shape[1]:])
        log("generate", res["generate_tokens_per_s"], "tok/s")

    inp = build_inputs(tok, REQUEST)
    hp = rr.Hparams()
    res["n_rows"] = len(inp.rows) + 1
    res["row_lengths"] = [len(r) for r in inp.rows] + [len(inp.kl_row)]

    if "rome" in parts:
        covs = covariance(model, [args.layer], args.cov, args.cov_tokens)
        med, times, out = timed(lambda: rr.rome_edit(model, args.layer, inp, covs.get(args.layer), hp,
                                                     padded=True), args.runs)
        res.update({"rome_layer": args.layer, "rome_edit_s": round(med, 3), "rome_runs_s": [round(t, 3) for t in times],
                    "rome_edit_best_s": round(min(times), 3),
                    "rome_steps": out["steps"], "rome_loss_first": out["trace"][0]["total"],
                    "rome_loss_last": out["trace"][-1]["total"], "rome_LA": out["LA"]})
        w = rr.proj_weight(model, args.layer)
        rr.add_to_proj_weight(model, args.layer, out["dW"])
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([inp.prompt_row]), use_cache=False).logits[0, -1]
        res["rome_p_target_after"] = float(torch.softmax(logits, -1)[inp.target[0]])
        rr.add_to_proj_weight(model, args.layer, -out["dW"])
        assert torch.allclose(rr.proj_weight(model, args.layer), w, atol=1e-5)
        log("rome", res["rome_edit_s"], "s", out["steps"], "steps")

    if "wilke" in parts:
        layers = list(range(args.scan))
        covs = covariance(model, layers, args.cov, args.cov_tokens)
        saved = {l: rr.proj_weight(model, l) for l in layers}
        t = time.perf_counter()
        out = rr.wilke_edit(model, layers, inp, covs, hp, padded=True)
        res["wilke_edit_s"] = round(time.perf_counter() - t, 3)
        res["wilke_layer"] = out["layer"]
        res["wilke_LA"] = [out["LA"][l] for l in layers]
        res["wilke_steps"] = [out["scans"][l]["steps"] for l in layers]
        l = out["layer"]
        rr.add_to_proj_weight(model, l, saved[l] - rr.proj_weight(model, l))
        log("wilke", res["wilke_edit_s"], "s, layer", l)

    print(json.dumps(res))


if __name__ == "__main__":
    main()
