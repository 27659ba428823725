"""ROME / WilKE reference fixtures for the tiny models.

Run from the repository root:  /root/.cache/wilke/venv/bin/python samples/reference/make_rome_fixtures.py

Reads Tests/WilKETests/Fixtures/models/<arch>/ and writes Tests/WilKETests/Fixtures/rome/<arch>.{json,
safetensors}, computed by samples/reference/rome_reference.py (rows run each alone, no padding).

<arch>.json  (integers = inputs, floats = reference outputs; loss floats are float32 values as Python floats)
  arch, edit_layer, hparams{v_lr, v_num_grad_steps, v_weight_decay, clamp_norm_factor, kl_factor,
                            early_stop, mom2_adjustment}
  inputs{rows[3][*], idxs[3], target[2], kl_row, kl_idx, key_rows[3][*], key_idxs[3], prompt_row, prompt_idx}
  cov{tokens[N_SEQ][SEQ_LEN], ridge}      C.l = (1/#tokens) sum_t k_t k_t^T over every token of every
                                          sequence (each run alone) + ridge * I
  grad{zero{nll,kl,kl_raw,wd,total}, delta{...}}   loss parts at delta = 0 and at delta = grad.delta
                                          (kl = kl_factor * KL as it enters the total; kl_raw = KL)
  rome{steps, clamps, trace[{nll,kl,kl_raw,wd,total}], LA, W_norm, kc_dot_u_hat}
                                          trace has one entry per forward pass incl. the last (eval-only) one
  wilke{layers, LA[per layer], chosen, steps[per layer], clamps[per layer], kc_dot_u_hat[per layer]}

<arch>.safetensors (float32)
  C.l{l}                 [d_ff, d_ff]   key covariance used for layer l (all layers)
  grad.delta             [d]            the fixed nonzero delta of the gradient check
  grad.zero.{nll,kl,wd,total}  [d]      d/d delta at delta = 0 of nll, kl_factor*KL, wd, total
  grad.delta.{nll,kl,wd,total} [d]      the same at delta = grad.delta
  rome.{m0,delta,v_star,mc}    [d]      single-layer ROME at edit_layer
  rome.{kbar,u,u_hat,kc}       [d_ff]
  rome.r                 [d]
  rome.dW                [d, d_ff]      logical [out, in] update of the output projection
  rome.trace             [n_pass, 4]    columns nll, kl_factor*KL, wd, total
  rome.logits_after      [len(prompt_row), V]  logits of the bare prompt row after applying rome.dW
  wilke.l{l}.{delta, r}  [d]            per scanned layer
  wilke.l{l}.{kbar, u_hat, kc} [d_ff]
  wilke.l{l}.trace       [n_pass_l, 4]
"""
import json
import os
import re
import sys

import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rome_reference as rr  # noqa: E402

# New families go last: the seed is the position, so the earlier fixtures keep their bytes.
ARCHS = ["gpt2", "gptj", "llama", "qwen2", "qwen3", "mistral", "phi3", "llama3"]
# How far down the model's sorted next-token list the target tokens are taken, per model: varied so that
# the fixtures cover an early stop, a clamped delta and a full 19-step run.
TARGET_RANK = {"gpt2": 0.05, "gptj": 0.3, "llama": 0.6, "qwen2": 0.9, "qwen3": 0.5, "mistral": 0.7, "phi3": 0.4,
               "llama3": 0.8}
# Hyper-parameter overrides (recorded in the JSON) so that every branch of the loop is covered: random
# tiny models never reach ROME's 0.05 early-stop loss, and their delta stays far inside 4 ||m0||.
HP_OVERRIDES = {"gpt2": {"early_stop": 2.5}, "llama": {"clamp_norm_factor": 0.75}}
EDIT_LAYER = 0
N_SEQ, SEQ_LEN = 8, 16
RIDGE_FRAC = 1e-2        # ridge = RIDGE_FRAC * mean diagonal of the raw second moment


def covariances(model, tokens):
    """Uncentered second moment of every layer's key over all tokens, plus a small ridge."""
    L = rr.num_layers(model)
    projs = rr.model_parts(model)[1]
    sums, count = [0.0] * L, 0
    keys = {}
    hs = [projs[l].register_forward_pre_hook(lambda m, inp, l=l: keys.__setitem__(l, inp[0][0].double()))
          for l in range(L)]
    with torch.no_grad():
        for seq in tokens:
            model(input_ids=torch.tensor([seq]), use_cache=False)
            for l in range(L):
                sums[l] = sums[l] + keys[l].t() @ keys[l]
            count += len(seq)
    for h in hs:
        h.remove()
    moms = [s / count for s in sums]
    ridge = RIDGE_FRAC * float(torch.stack([m.diagonal().mean() for m in moms]).mean())
    covs = {l: (moms[l] + ridge * torch.eye(moms[l].shape[0], dtype=torch.float64)).float() for l in range(L)}
    return covs, ridge


def make_inputs(model, g, vocab, rank):
    """3 rewriting rows with prefixes of 0, 3 and 6 tokens, a 4-token prompt ending with a 2-token subject,
    a 2-token target the model does not predict, the KL row "{s} is a".

    The subject ends the prompt (like "The mother tongue of {}"), so its last token is also the position
    predicting y_1: a delta at the LAST layer then still reaches the NLL (directly, at that position),
    while at layer 0 it also reaches the y_2 position through attention. With the subject earlier in the
    prompt, the last layer's NLL gradient would be exactly 0 and its optimization would be driven by
    rounding noise amplified by Adam, which no port can reproduce."""
    def draw(n):
        return (torch.randint(1, vocab, (n,), generator=g)).tolist()
    subj = draw(2)
    rel = draw(2)
    prompt = rel + subj
    prefixes = [[], draw(3), draw(6)]
    is_a = draw(2)
    # Target: tokens the model does not predict after the bare prompt (at a fixed fraction `rank` down
    # the sorted list), so the optimization has to work for several steps.
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt]), use_cache=False).logits[0, -1]
    order = torch.argsort(logits, descending=True).tolist()
    order = [t for t in order if t != 0]
    y1 = order[int(rank * len(order))]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + [y1]]), use_cache=False).logits[0, -1]
    order = [t for t in torch.argsort(logits, descending=True).tolist() if t not in (0, y1)]
    y2 = order[int(rank * len(order))]
    target = [y1, y2]
    rows = [p + prompt + target[:-1] for p in prefixes]
    idxs = [len(p) + len(prompt) - 1 for p in prefixes]
    inp = rr.RomeInputs(rows=rows, idxs=idxs, target=target, kl_row=subj + is_a, kl_idx=len(subj) - 1,
                        key_rows=[p + prompt for p in prefixes], key_idxs=idxs,
                        prompt_row=prompt, prompt_idx=len(prompt) - 1)
    inp.check()
    return inp


def compact_json(j):
    """Indented JSON with every list of numbers on one line."""
    text = json.dumps(j, indent=1)
    return re.sub(r"\[[-0-9.eE,\s]*\]", lambda m: "[" + ", ".join(m.group(0)[1:-1].split()).replace(",,", ",")
                  + "]", text) + "\n"


def f32(x):
    return float(torch.tensor(float(x), dtype=torch.float32))


def trace_json(trace, hp):
    return [{"nll": f32(t["nll"]), "kl": f32(hp.kl_factor * t["kl"]), "kl_raw": f32(t["kl"]),
             "wd": f32(t["wd"]), "total": f32(t["total"])} for t in trace]


def trace_tensor(trace, hp):
    return torch.tensor([[t["nll"], hp.kl_factor * t["kl"], t["wd"], t["total"]] for t in trace],
                        dtype=torch.float32)


def loss_parts(model, layer, inp, delta, hp):
    m0 = rr.target_init(model, layer, inp)
    logp0 = rr.reference_logp0(model, layer, inp)
    with torch.no_grad():
        out = rr.rome_loss(model, layer, inp, delta, m0, logp0, hp)
    return {"nll": f32(out["nll"]), "kl": f32(hp.kl_factor * out["kl"]), "kl_raw": f32(out["kl"]),
            "wd": f32(out["wd"]), "total": f32(out["total"])}


def make(arch, i):
    model = rr.load_tiny_model(arch)
    cfg = model.config
    vocab = cfg.vocab_size
    L = rr.num_layers(model)
    hp = rr.Hparams(**HP_OVERRIDES.get(arch, {}))
    g = torch.Generator().manual_seed(2024 + i)
    cov_tokens = torch.randint(1, vocab, (N_SEQ, SEQ_LEN), generator=g).tolist()
    covs, ridge = covariances(model, cov_tokens)
    inp = make_inputs(model, g, vocab, TARGET_RANK[arch])
    t = {f"C.l{l}": covs[l] for l in range(L)}
    j = {"arch": arch, "edit_layer": EDIT_LAYER, "hparams": vars(hp),
         "inputs": vars(inp), "cov": {"tokens": cov_tokens, "ridge": ridge}}

    # Gradients at delta = 0 and at a fixed delta of norm ||m0||.
    m0 = rr.target_init(model, EDIT_LAYER, inp)
    dvec = torch.randn(m0.shape[0], generator=g)
    dvec = dvec * (m0.norm() / dvec.norm())
    t["grad.delta"] = dvec
    j["grad"] = {}
    for name, point in (("zero", torch.zeros_like(dvec)), ("delta", dvec)):
        j["grad"][name] = loss_parts(model, EDIT_LAYER, inp, point, hp)
        for part in ("nll", "kl", "wd"):
            _, gr = rr.loss_and_grad(model, EDIT_LAYER, inp, point, parts=(part,), hp=hp)
            t[f"grad.{name}.{part}"] = gr
        _, gr = rr.loss_and_grad(model, EDIT_LAYER, inp, point, hp=hp)
        t[f"grad.{name}.total"] = gr

    # WilKE scan over every layer (never applied here), then the single-layer ROME edit, applied.
    j["wilke"] = {"layers": list(range(L)), "LA": [], "steps": [], "clamps": [], "kc_dot_u_hat": []}
    for l in range(L):
        s = rr.rome_edit(model, l, inp, covs[l], hp)
        j["wilke"]["LA"].append(s["LA"])
        j["wilke"]["steps"].append(s["steps"])
        j["wilke"]["clamps"].append(s["clamps"])
        j["wilke"]["kc_dot_u_hat"].append(s["kc_dot_u_hat"])
        for k in ("delta", "r", "kbar", "u_hat", "kc"):
            t[f"wilke.l{l}.{k}"] = s[k]
        t[f"wilke.l{l}.trace"] = trace_tensor(s["trace"], hp)
    las = j["wilke"]["LA"]
    j["wilke"]["chosen"] = las.index(min(las))

    res = rr.rome_edit(model, EDIT_LAYER, inp, covs[EDIT_LAYER], hp, apply=True)
    for k in ("m0", "delta", "v_star", "mc", "kbar", "u", "u_hat", "kc", "r", "dW"):
        t[f"rome.{k}"] = res[k]
    t["rome.trace"] = trace_tensor(res["trace"], hp)
    with torch.no_grad():
        t["rome.logits_after"] = model(input_ids=torch.tensor([inp.prompt_row]), use_cache=False).logits[0]
    j["rome"] = {"steps": res["steps"], "clamps": res["clamps"], "trace": trace_json(res["trace"], hp), "LA": res["LA"],
                 "W_norm": res["W_norm"], "kc_dot_u_hat": res["kc_dot_u_hat"]}

    os.makedirs(rr.FIXTURES, exist_ok=True)
    save_file({k: v.detach().to(torch.float32).contiguous() for k, v in t.items()},
              f"{rr.FIXTURES}/{arch}.safetensors")
    with open(f"{rr.FIXTURES}/{arch}.json", "w") as f:
        f.write(compact_json(j))
    cond = float(torch.linalg.cond(covs[EDIT_LAYER].double()))
    print(f"{arch}: steps {res['steps']} clamps {res['clamps']} loss {res['trace'][0]['total']:.4f} -> {res['trace'][-1]['total']:.4f}"
          f" LA {['%.4g' % x for x in las]} chosen {j['wilke']['chosen']} wilke steps {j['wilke']['steps']} clamps {j['wilke']['clamps']}"
          f" cond(C) {cond:.3g} kc.u {res['kc_dot_u_hat']:.4g}"
          f" size {os.path.getsize(f'{rr.FIXTURES}/{arch}.safetensors')}")


def main():
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    torch.manual_seed(0)
    for i, arch in enumerate(sys.argv[1:] or ARCHS):
        make(arch, ARCHS.index(arch))


if __name__ == "__main__":
    main()
