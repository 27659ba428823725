"""Token-level PyTorch reference for MEMIT (compute_z / compute_ks / the layer spread), ALGORITHM.md §3.1
(kmeng01/memit memit/memit_main.py execute_memit, compute_z.py, compute_ks.py), for one request.

Like rome_reference.py it works on token ids (the vocab-96 tiny models), CPU, float32 activations and
float64 solves. It reuses rome_reference's inputs, hyper-parameters, loss parts and key taps; only the
intervention site (the residual output of block L instead of layer l's MLP output) and the update differ.

Library:
    MemitHparams                 Hparams + layers, mom2_update_weight (lambda)
    block_modules(model)         the transformer blocks (their output is MEMIT's hook point, layer_module_tmp)
    residual_at(model, L, row, idx)   h^L: block L's output at one position
    compute_z(...)               the Adam loop of compute_z: delta on h^L, z = h^L + delta, loss trace
    compute_ks(...)              k_bar: mean over template groups of the group's mean key (compute_ks.py)
    memit_edit(...)              z, then per layer ascending: K, H, R = (z - H)/(n - i),
                                 dW = R K^T (lambda C + K K^T)^-1 (float64), applied before the next layer

CLI (from the repo root):
    python samples/reference/memit_reference.py [arch ...]
        writes Tests/WilKETests/Fixtures/memit/<arch>.{json,safetensors} (see make_fixture's docstring)
"""
import json
import os
import re
import sys
from dataclasses import dataclass, field

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rome_reference as rr  # noqa: E402


@dataclass
class MemitHparams(rr.Hparams):
    clamp_norm_factor: float = 0.75      # MEMIT's gpt2-xl / GPT-J value
    layers: list = field(default_factory=lambda: [0, 1])
    mom2_update_weight: float = 15000.0


def block_modules(model):
    mt = model.config.model_type
    if mt in ("gpt2", "gptj"):
        return list(model.transformer.h)
    return list(model.model.layers)


def _hidden(out):
    return out[0] if isinstance(out, tuple) else out


def forward_resid(model, rows, layer, delta=None, idxs=None, tap_idxs=None):
    """Runs each row alone. delta [d] is added to block `layer`'s output at (row j, idxs[j]); with tap_idxs,
    also returns block `layer`'s output (after the delta) at (row j, tap_idxs[j]). Returns (logits, taps)."""
    block = block_modules(model)[layer]
    state = {"row": 0}
    taps = {}

    def hook(m, inp, out):
        h = _hidden(out)
        if delta is not None:
            h = h.clone()
            h[0, idxs[state["row"]], :] = h[0, idxs[state["row"]], :] + delta
        if tap_idxs is not None:
            taps[state["row"]] = h[0, tap_idxs[state["row"]]].detach().clone()
        return (h,) + tuple(out[1:]) if isinstance(out, tuple) else h

    handle = block.register_forward_hook(hook)
    try:
        logits = []
        for j, r in enumerate(rows):
            state["row"] = j
            logits.append(model(input_ids=torch.tensor([r]), use_cache=False).logits[0])
    finally:
        handle.remove()
    return logits, ([taps[j] for j in range(len(rows))] if tap_idxs is not None else None)


def residual_at(model, layer, row, idx):
    """h^L [d]: block `layer`'s output at position idx of one row."""
    with torch.no_grad():
        _, taps = forward_resid(model, [row], layer, tap_idxs=[idx])
    return taps[0]


def memit_loss(model, layer, inp, delta, h0, logp0, hp):
    """rome_reference.rome_loss with the delta on block `layer`'s output (compute_z.py's loss)."""
    rows = inp.rows + [inp.kl_row]
    idxs = list(inp.idxs) + [inp.kl_idx]
    logits, _ = forward_resid(model, rows, layer, delta=delta, idxs=idxs)
    ty = len(inp.target)
    y = torch.tensor(inp.target)
    nlls = []
    for j, r in enumerate(inp.rows):
        n = len(r)
        lp = torch.log_softmax(logits[j][n - ty:n], dim=-1)
        nlls.append(-lp[torch.arange(ty), y].mean())
    nll = torch.stack(nlls).mean()
    kl_logp = torch.log_softmax(logits[-1][inp.kl_idx], dim=-1)
    if logp0 is None:
        kl = torch.zeros((), dtype=nll.dtype)
    else:
        kl = torch.nn.functional.kl_div(logp0.unsqueeze(0), kl_logp.unsqueeze(0), log_target=True,
                                        reduction="batchmean")
    wd = hp.v_weight_decay * (torch.norm(delta) / torch.norm(h0) ** 2)
    total = nll + hp.kl_factor * kl + wd
    return {"nll": nll, "kl": kl, "wd": wd, "total": total, "kl_logp": kl_logp}


def compute_z(model, layer, inp, hp):
    """compute_z.py: target_init = h^L at (row 0, idx_0); the same Adam / early-stop / last-pass-eval loop as
    ROME's compute_v; projection onto ||delta|| <= clamp_norm_factor * ||h^L||. Returns z = h^L + delta."""
    for p in model.parameters():
        p.requires_grad_(False)
    h0 = residual_at(model, layer, inp.rows[0], inp.idxs[0])
    delta, trace, steps, clamps = rr.optimize_delta(
        lambda d, logp0: memit_loss(model, layer, inp, d, h0, logp0, hp), h0, hp)
    return {"h0": h0, "delta": delta, "z": h0 + delta, "trace": trace, "steps": steps, "clamps": clamps}


def compute_ks(model, layer, inp, groups):
    """k_bar [d_ff]: the key rows split into consecutive template groups of the given sizes (MEMIT: ["{}"]
    and the generated contexts); the mean of each group's mean key (compute_ks.py l.38-50)."""
    assert sum(groups) == len(inp.key_rows)
    with torch.no_grad():
        _, keys, _ = rr.forward_rows(model, inp.key_rows, tap_layer=layer, tap_idxs=inp.key_idxs)
    means, start = [], 0
    for n in groups:
        means.append(keys[start:start + n].mean(0))
        start += n
    return torch.stack(means, 0).mean(0)


def memit_edit(model, inp, covs, hp, groups):
    """execute_memit for one request; every layer's dW is applied to the model before the next layer (the
    reference applies, restores and re-applies them all at the end: the same final weights)."""
    layers = hp.layers
    z_layer = layers[-1]
    zz = compute_z(model, z_layer, inp, hp)
    per = []
    for i, l in enumerate(layers):
        k = compute_ks(model, l, inp, groups)
        h = residual_at(model, z_layer, inp.prompt_row, inp.prompt_idx)
        k64 = k.double().unsqueeze(1)                                   # [d_ff, 1]
        cov = covs[l].double() if covs is not None else torch.eye(k.shape[0], dtype=torch.float64)
        adj = torch.linalg.solve(hp.mom2_update_weight * cov + k64 @ k64.T, k64)   # [d_ff, 1]
        resid = (zz["z"].double() - h.double()).unsqueeze(1) / (len(layers) - i)  # [d, 1]
        dw = resid @ adj.T                                              # [d, d_ff]
        rr.add_to_proj_weight(model, l, dw.float())
        per.append({"layer": l, "kbar": k, "H": h, "R": resid[:, 0].float(), "adj": adj[:, 0].float(),
                    "dW": dw.float(), "kCk": float(k64[:, 0] @ torch.linalg.solve(cov, k64[:, 0]))})
    h_after = residual_at(model, z_layer, inp.prompt_row, inp.prompt_idx)
    return {**zz, "layers": per, "h_after": h_after}


# ---------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------

FIXTURES = "Tests/WilKETests/Fixtures/memit"
# The fixtures reuse the ROME fixtures' token inputs and covariances (Fixtures/rome/<arch>.*): key rows are
# the bare prompt then two prefixed ones, grouped like MEMIT's [["{}"], contexts]. lambda is scaled down
# for the random tiny models (k^T C^-1 k is about d_ff there, not ~10^4) so each layer's update is a sizable
# share of its residual and the spread visibly moves h^L.
GROUPS = [1, 2]
LAMBDA = {"gpt2": 40.0, "llama": 30.0}


def make_fixture(arch):
    """<arch>.json: arch, hparams (incl. layers, mom2_update_weight), groups, z{steps, clamps, trace},
    layers[{layer, kCk}]; inputs and C come from Fixtures/rome/<arch>.{json,safetensors}.
    <arch>.safetensors (float32): z.{h0, delta, z} [d], z.trace [n_pass, 4] (nll, kl_factor*KL, wd, total),
    l{l}.{kbar, adj} [d_ff], l{l}.{H, R} [d], l{l}.dW [d, d_ff] (logical [out, in]), h_after [d]."""
    from safetensors.torch import load_file, save_file
    j = json.load(open(f"{rr.FIXTURES}/{arch}.json"))
    t = load_file(f"{rr.FIXTURES}/{arch}.safetensors")
    model = rr.load_tiny_model(arch)
    L = rr.num_layers(model)
    inp = rr.inputs_from_json(j)
    hp = MemitHparams(layers=list(range(L)), mom2_update_weight=LAMBDA[arch])
    covs = {l: t[f"C.l{l}"] for l in range(L)}
    res = memit_edit(model, inp, covs, hp, GROUPS)
    out = {"z.h0": res["h0"], "z.delta": res["delta"], "z.z": res["z"], "h_after": res["h_after"],
           "z.trace": torch.tensor([[s["nll"], hp.kl_factor * s["kl"], s["wd"], s["total"]] for s in res["trace"]])}
    for p in res["layers"]:
        for k in ("kbar", "adj", "H", "R", "dW"):
            out[f"l{p['layer']}.{k}"] = p[k]
    meta = {"arch": arch, "hparams": vars(hp), "groups": GROUPS,
            "z": {"steps": res["steps"], "clamps": res["clamps"], "trace": [{k: float(torch.tensor(v, dtype=torch.float32))
                  for k, v in s.items()} for s in res["trace"]]},
            "layers": [{"layer": p["layer"], "kCk": p["kCk"]} for p in res["layers"]]}
    os.makedirs(FIXTURES, exist_ok=True)
    save_file({k: v.detach().to(torch.float32).contiguous() for k, v in out.items()}, f"{FIXTURES}/{arch}.safetensors")
    with open(f"{FIXTURES}/{arch}.json", "w") as f:
        f.write(rr_compact(meta))
    before = float((res["z"] - res["layers"][0]["H"]).norm())
    after = float((res["z"] - res["h_after"]).norm())
    print(f"{arch}: steps {res['steps']} clamps {res['clamps']} loss {res['trace'][0]['total']:.4f} -> "
          f"{res['trace'][-1]['total']:.4f}  kCk {[round(p['kCk'], 2) for p in res['layers']]}  "
          f"||z - h^L|| {before:.4f} -> {after:.4f}  size {os.path.getsize(f'{FIXTURES}/{arch}.safetensors')}")


def rr_compact(j):
    text = json.dumps(j, indent=1)
    return re.sub(r"\[[-0-9.eE,\s]*\]", lambda m: "[" + ", ".join(m.group(0)[1:-1].split()).replace(",,", ",")
                  + "]", text) + "\n"


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for a in sys.argv[1:] or ["gpt2", "llama"]:
        make_fixture(a)
