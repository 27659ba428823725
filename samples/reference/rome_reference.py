"""Token-level PyTorch reference for ROME (compute_u / compute_v / rank-one update) and WilKE's layer scan.

This file is the executable statement of /work/shared/docs/ALGORITHM.md §1-§2 (kmeng01/rome as used by
ChenhuiHu/WilKE). It works on token ids, not strings, so the tiny vocab-96 fixture models can use it; the
string-level index rule of §2.2 lives in bench_torch.py. CPU, float32 activations; linear solves in float64.

Library:
    RomeInputs                      all token-level inputs of one edit request
    Hparams                         ROME/WilKE hyper-parameters (defaults: gpt2-xl WilKE json)
    model_parts(model)              (mlp modules, output projections) per layer for gpt2/gptj/llama/qwen2
    proj_weight(model, l)           W_l in logical [d_out, d_in] = [d, d_ff]
    rome_loss(...)                  NLL / KL / WD / total for a given delta (differentiable in delta)
    loss_and_grad(...)              a chosen sum of loss parts and its autograd gradient w.r.t. delta
    compute_v(...)                  the Adam loop of §2.3: delta, v*, m0, per-step loss trace
    compute_u(...)                  k_bar, u = C^-1 k_bar (float64 solve), u_hat
    rome_edit(...)                  compute_u + compute_v + (k_c, m_c) + r + dW + LA, optionally applied
    wilke_edit(...)                 LA scan over candidate layers, first argmin, apply at l*

CLI (from the repo root):
    python samples/reference/rome_reference.py check [arch ...]
        recompute every fixture in Tests/WilKETests/Fixtures/rome from its JSON inputs and print max abs diffs
"""
import json
import math
import sys
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class Hparams:
    v_lr: float = 0.5
    v_num_grad_steps: int = 20
    v_weight_decay: float = 0.5
    clamp_norm_factor: float = 4.0
    kl_factor: float = 0.0625
    early_stop: float = 5e-2
    mom2_adjustment: bool = True


@dataclass
class RomeInputs:
    """Token-level request. Every (row, idx) pair marks the subject's last token in that row."""
    rows: list            # rewriting rows: template prefix + prompt tokens + target[:-1]; row 0 has no prefix
    idxs: list            # subject-last-token index per rewriting row
    target: list          # target token ids y (T_y tokens)
    kl_row: list          # tokens of "{subject} is a"
    kl_idx: int
    key_rows: list = field(default_factory=list)   # template prefix + prompt tokens (no target) for k_bar
    key_idxs: list = field(default_factory=list)
    prompt_row: list = field(default_factory=list)  # bare prompt (no prefix, no target) for (k_c, m_c)
    prompt_idx: int = 0

    def check(self):
        ty = len(self.target)
        assert len(self.rows) == len(self.idxs) and len(self.key_rows) == len(self.key_idxs)
        for r, i in zip(self.rows, self.idxs):
            assert 0 <= i < len(r) - (ty - 1), "subject index must lie in the prompt part of a rewriting row"
            assert r[len(r) - (ty - 1):] == self.target[:-1] if ty > 1 else True
        for r, i in zip(self.key_rows + [self.prompt_row, self.kl_row],
                        self.key_idxs + [self.prompt_idx, self.kl_idx]):
            assert 0 <= i < len(r)


# ---------------------------------------------------------------------------------------------------------
# Architecture adapters
# ---------------------------------------------------------------------------------------------------------

def model_parts(model):
    """(mlp modules, output projections) per layer. The MLP module output is ROME's hook point; the output
    projection's input is the key k and its output (incl. bias) is m."""
    mt = model.config.model_type
    if mt == "gpt2":
        blocks = model.transformer.h
        return [b.mlp for b in blocks], [b.mlp.c_proj for b in blocks]
    if mt == "gptj":
        blocks = model.transformer.h
        return [b.mlp for b in blocks], [b.mlp.fc_out for b in blocks]
    if mt in ("llama", "qwen2", "mistral", "qwen3", "phi3"):
        blocks = model.model.layers
        return [b.mlp for b in blocks], [b.mlp.down_proj for b in blocks]
    raise ValueError(f"unsupported model type {mt}")


def num_layers(model):
    return len(model_parts(model)[0])


def _is_conv1d(proj):
    return type(proj).__name__ == "Conv1D"   # GPT-2 stores [in, out]


def proj_weight(model, layer):
    """W_l in logical [d_out, d_in] (a copy)."""
    proj = model_parts(model)[1][layer]
    w = proj.weight.detach()
    return (w.t() if _is_conv1d(proj) else w).clone()


def add_to_proj_weight(model, layer, dw):
    """W_l += dw, dw in logical [d_out, d_in]; the bias is untouched (§2.4)."""
    proj = model_parts(model)[1][layer]
    with torch.no_grad():
        proj.weight += (dw.t() if _is_conv1d(proj) else dw).to(proj.weight.dtype)


# ---------------------------------------------------------------------------------------------------------
# Forward with intervention and taps
# ---------------------------------------------------------------------------------------------------------

def forward_rows(model, rows, layer=None, delta=None, idxs=None, tap_layer=None, tap_idxs=None, padded=False):
    """Runs token rows through the model.

    delta [d] is added to the MLP output of `layer` at (row j, idxs[j]) for every row j.
    If tap_layer is set, returns also keys [n, d_ff] and outputs [n, d] of that layer's output projection
    at (row j, tap_idxs[j]). padded=True runs one right-padded batch (pad = token 0 + attention mask),
    padded=False runs each row alone; the results agree (causal attention, right padding).
    Returns (list of logits [T_j, V], keys or None, outs or None)."""
    mlps, projs = model_parts(model)
    state = {"rows": list(range(len(rows)))}   # which rows the current forward call holds
    keys, outs = {}, {}
    handles = []
    if delta is not None:
        def mlp_hook(m, inp, out):
            out = out.clone()
            for b, j in enumerate(state["rows"]):
                out[b, idxs[j], :] = out[b, idxs[j], :] + delta
            return out
        handles.append(mlps[layer].register_forward_hook(mlp_hook))
    if tap_layer is not None:
        def proj_hook(m, inp, out):
            for b, j in enumerate(state["rows"]):
                keys[j] = inp[0][b, tap_idxs[j]].detach().clone()
                outs[j] = out[b, tap_idxs[j]].detach().clone()
        handles.append(projs[tap_layer].register_forward_hook(proj_hook))
    try:
        logits = []
        if padded:
            n = max(len(r) for r in rows)
            ids = torch.zeros(len(rows), n, dtype=torch.long)
            mask = torch.zeros(len(rows), n, dtype=torch.long)
            for j, r in enumerate(rows):
                ids[j, :len(r)] = torch.tensor(r)
                mask[j, :len(r)] = 1
            out = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
            logits = [out[j, :len(r)] for j, r in enumerate(rows)]
        else:
            for j, r in enumerate(rows):
                state["rows"] = [j]
                logits.append(model(input_ids=torch.tensor([r]), use_cache=False).logits[0])
    finally:
        for h in handles:
            h.remove()
    if tap_layer is None:
        return logits, None, None
    return logits, torch.stack([keys[j] for j in range(len(rows))]), torch.stack([outs[j] for j in range(len(rows))])


# ---------------------------------------------------------------------------------------------------------
# compute_v: loss, gradient, Adam loop (§2.3)
# ---------------------------------------------------------------------------------------------------------

def target_init(model, layer, inp, padded=False):
    """m0: unmodified MLP output at (row 0, idx_0) [d]."""
    with torch.no_grad():
        _, _, outs = forward_rows(model, inp.rows[:1], tap_layer=layer, tap_idxs=inp.idxs[:1], padded=padded)
    return outs[0]


def rome_loss(model, layer, inp, delta, m0, logp0=None, hp=Hparams(), padded=False):
    """Loss parts at delta [d] (differentiable w.r.t. delta).

    nll   = mean over rewriting rows of the per-row mean of -log p(y_tau) at the positions predicting y_tau
    kl    = KL(P_delta || P_0) at the KL row's subject index (0 if logp0 is None: it is then P_delta itself)
    wd    = v_weight_decay * ||delta|| / ||m0||^2
    total = nll + kl_factor * kl + wd
    Also returns kl_logp (log P_delta [V]) so the caller can freeze P_0 at delta = 0."""
    rows = inp.rows + [inp.kl_row]
    idxs = list(inp.idxs) + [inp.kl_idx]
    logits, _, _ = forward_rows(model, rows, layer=layer, delta=delta, idxs=idxs, padded=padded)
    ty = len(inp.target)
    y = torch.tensor(inp.target)
    nlls = []
    for j, r in enumerate(inp.rows):
        n = len(r)
        lp = torch.log_softmax(logits[j][n - ty:n], dim=-1)     # position n-ty predicts y_1, ...
        nlls.append(-lp[torch.arange(ty), y].mean())
    nll = torch.stack(nlls).mean()
    kl_logp = torch.log_softmax(logits[-1][inp.kl_idx], dim=-1)
    if logp0 is None:
        kl = torch.zeros((), dtype=nll.dtype)
    else:
        kl = F.kl_div(logp0.unsqueeze(0), kl_logp.unsqueeze(0), log_target=True, reduction="batchmean")
    wd = hp.v_weight_decay * (torch.norm(delta) / torch.norm(m0) ** 2)
    total = nll + hp.kl_factor * kl + wd
    return {"nll": nll, "kl": kl, "wd": wd, "total": total, "kl_logp": kl_logp}


def reference_logp0(model, layer, inp, padded=False):
    """log P_0 [V]: the KL row's next-token log-distribution at delta = 0."""
    with torch.no_grad():
        logits, _, _ = forward_rows(model, [inp.kl_row], padded=padded)
    return torch.log_softmax(logits[0][inp.kl_idx], dim=-1)


def loss_and_grad(model, layer, inp, delta, parts=("nll", "kl", "wd"), hp=Hparams(), padded=False):
    """(loss, dloss/ddelta [d]) for the sum of the chosen parts; kl enters scaled by kl_factor, as in the
    total. P_0 and m0 are computed at delta = 0. The gradient of ||delta|| at 0 is 0 (PyTorch's choice)."""
    m0 = target_init(model, layer, inp, padded)
    logp0 = reference_logp0(model, layer, inp, padded)
    d = delta.detach().clone().requires_grad_(True)
    out = rome_loss(model, layer, inp, d, m0, logp0, hp, padded)
    weights = {"nll": 1.0, "kl": hp.kl_factor, "wd": 1.0}
    loss = sum(weights[p] * out[p] for p in parts)
    (g,) = torch.autograd.grad(loss, d)
    return float(loss.detach()), g.detach()


def optimize_delta(loss_fn, m0, hp):
    """The Adam loop shared by ROME's compute_v and MEMIT's compute_z (§2.3): delta from 0, the loss at
    every pass, early stop before the update, a last evaluation-only pass, and projection onto
    ||delta|| <= clamp_norm_factor * ||m0|| after each step. loss_fn(delta, logp0) returns the loss parts
    and kl_logp; logp0 is None on the first pass (delta = 0), whose kl_logp is then frozen.
    Returns (delta, trace, steps, clamps)."""
    delta = torch.zeros(m0.shape[0], requires_grad=True)
    opt = torch.optim.Adam([delta], lr=hp.v_lr)
    logp0, trace, steps, clamps = None, [], 0, 0
    max_norm = hp.clamp_norm_factor * m0.norm()
    for it in range(hp.v_num_grad_steps):
        opt.zero_grad()
        out = loss_fn(delta, logp0)
        if logp0 is None:
            logp0 = out["kl_logp"].detach().clone()   # P_0 frozen at iteration 0 (delta = 0): KL is 0 there
        trace.append({k: out[k].item() for k in ("nll", "kl", "wd", "total")})
        if out["total"].item() < hp.early_stop or it == hp.v_num_grad_steps - 1:
            break
        out["total"].backward()
        opt.step()
        steps += 1
        with torch.no_grad():
            if delta.norm() > max_norm:
                delta[...] = delta * max_norm / delta.norm()
                clamps += 1
    return delta.detach(), trace, steps, clamps


def compute_v(model, layer, inp, hp=Hparams(), padded=False):
    """The optimization loop of §2.3. Returns delta, v_star = m0 + delta, m0, the per-iteration loss parts
    (one entry per forward pass, including the final evaluation-only pass), the number of Adam steps and
    how many of them ended with a projection onto the clamp ball."""
    for p in model.parameters():
        p.requires_grad_(False)
    m0 = target_init(model, layer, inp, padded)
    delta, trace, steps, clamps = optimize_delta(
        lambda d, logp0: rome_loss(model, layer, inp, d, m0, logp0, hp, padded), m0, hp)
    return {"delta": delta, "v_star": m0 + delta, "m0": m0, "trace": trace, "steps": steps,
            "clamps": clamps}


# ---------------------------------------------------------------------------------------------------------
# compute_u, right vector, rank-one update (§2.2, §2.4)
# ---------------------------------------------------------------------------------------------------------

def compute_u(model, layer, inp, cov=None, hp=Hparams(), padded=False):
    """k_bar [d_ff] = mean key over the key-template rows at their subject index; u = C^-1 k_bar solved in
    float64 (identity when cov is None or mom2_adjustment is off); u_hat = u / ||u||."""
    with torch.no_grad():
        _, keys, _ = forward_rows(model, inp.key_rows, tap_layer=layer, tap_idxs=inp.key_idxs, padded=padded)
    kbar = keys.mean(dim=0)
    if cov is not None and hp.mom2_adjustment:
        u64 = torch.linalg.solve(cov.double(), kbar.double())
    else:
        u64 = kbar.double()
    u_hat64 = u64 / u64.norm()
    return {"kbar": kbar, "u": u64.float(), "u_hat": u_hat64.float(), "u_hat64": u_hat64}


def rome_edit(model, layer, inp, cov=None, hp=Hparams(), apply=False, padded=False):
    """A full ROME edit at `layer`: compute_u, compute_v, (k_c, m_c) at the bare prompt, r = (v* - m_c) /
    (k_c . u_hat), dW = r u_hat^T [d, d_ff], LA = ||r|| / ||W||_F. Applies dW when apply=True."""
    uu = compute_u(model, layer, inp, cov, hp, padded)
    vv = compute_v(model, layer, inp, hp, padded)
    with torch.no_grad():
        _, kc, mc = forward_rows(model, [inp.prompt_row], tap_layer=layer, tap_idxs=[inp.prompt_idx],
                                 padded=padded)
    kc, mc = kc[0], mc[0]
    denom = torch.dot(kc.double(), uu["u_hat64"])
    r = ((vv["v_star"].double() - mc.double()) / denom).float()
    dw = torch.outer(r, uu["u_hat"])
    w = proj_weight(model, layer)
    la = float(r.double().norm() / w.double().norm())
    if apply:
        add_to_proj_weight(model, layer, dw)
    res = dict(uu)
    del res["u_hat64"]
    res.update(vv)
    res.update({"kc": kc, "mc": mc, "kc_dot_u_hat": float(denom), "r": r, "dW": dw, "LA": la,
                "W_norm": float(w.double().norm())})
    return res


def wilke_edit(model, layers, inp, covs=None, hp=Hparams(), rerun=False, padded=False):
    """WilKE (§1.1): a full ROME edit at every candidate layer on the current model (never kept), LA(l),
    l* = first argmin, then the edit at l* is applied. With rerun=True l* is re-optimized from delta = 0 as
    the original code does; otherwise the scan's (u_hat, r) for l* is applied (same result on CPU)."""
    covs = covs or {}
    scans = {}
    for l in layers:
        scans[l] = rome_edit(model, l, inp, covs.get(l), hp, apply=False, padded=padded)
    las = [scans[l]["LA"] for l in layers]
    best = layers[las.index(min(las))]
    if rerun:
        final = rome_edit(model, best, inp, covs.get(best), hp, apply=True, padded=padded)
    else:
        final = scans[best]
        add_to_proj_weight(model, best, final["dW"])
    return {"layer": best, "LA": dict(zip(layers, las)), "scans": scans, "final": final}


# ---------------------------------------------------------------------------------------------------------
# Fixture I/O and CLI
# ---------------------------------------------------------------------------------------------------------

FIXTURES = "Tests/WilKETests/Fixtures/rome"
MODELS = "Tests/WilKETests/Fixtures/models"


def load_tiny_model(arch):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(f"{MODELS}/{arch}", dtype=torch.float32,
                                                 attn_implementation="eager")
    return model.eval()


def inputs_from_json(j):
    i = j["inputs"]
    return RomeInputs(rows=i["rows"], idxs=i["idxs"], target=i["target"], kl_row=i["kl_row"],
                      kl_idx=i["kl_idx"], key_rows=i["key_rows"], key_idxs=i["key_idxs"],
                      prompt_row=i["prompt_row"], prompt_idx=i["prompt_idx"])


def hparams_from_json(j):
    return Hparams(**j["hparams"])


def _check(arch):
    from safetensors.torch import load_file
    j = json.load(open(f"{FIXTURES}/{arch}.json"))
    t = load_file(f"{FIXTURES}/{arch}.safetensors")
    model = load_tiny_model(arch)
    inp, hp = inputs_from_json(j), hparams_from_json(j)
    layer = j["edit_layer"]
    covs = {l: t[f"C.l{l}"] for l in range(num_layers(model))}
    diffs = {}
    for padded in (False, True):
        res = rome_edit(model, layer, inp, covs[layer], hp, padded=padded)
        for k in ("delta", "v_star", "u_hat", "r", "dW"):
            diffs[f"{k}{'_padded' if padded else ''}"] = float((res[k] - t[f"rome.{k}"]).abs().max())
    _, g = loss_and_grad(model, layer, inp, t["grad.delta"], hp=hp)
    diffs["grad.total"] = float((g - t["grad.delta.total"]).abs().max())
    print(arch, json.dumps(diffs))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "check":
        torch.set_num_threads(2)
        for a in sys.argv[2:] or ["gpt2", "gptj", "llama", "qwen2", "qwen3", "mistral", "phi3", "llama3"]:
            _check(a)
    else:
        print(__doc__)
