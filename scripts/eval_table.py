"""Markdown table of `wilke eval` runs for the README's Results section (standard library only).

Usage: python3 scripts/eval_table.py RUN_DIR [RUN_DIR ...]
One row per checkpoint reached (n = 1, 2, 4, ...) of each run: S, ES, GS, LS, ERS, ORS, plus the median
wall time of one edit and of one roll-back over the run's logged edits.
"""
import json, os, statistics, sys


def rows(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    log = [json.loads(l) for l in open(os.path.join(d, "edits.jsonl")) if l.strip()]
    edit = [e["editSeconds"] for e in log if e.get("editSeconds") is not None]
    back = [e["rollbackSeconds"] for e in log if e.get("rollbackSeconds") is not None]
    timing = (f"{statistics.median(edit):.1f}" if edit else "n/a", f"{statistics.median(back):.1f}" if back else "n/a")
    method = cfg["method"]
    if method == "rome":
        method += f" (layer {cfg['layer'] if cfg.get('layer') is not None else cfg['hyperparameters']['romeLayer']})"
    elif method == "wilke":
        ls = cfg["hyperparameters"].get("scanLayers", [])
        # Runs saved before the fast scan existed ran the full scan.
        mode = cfg["hyperparameters"].get("scanMode", "full")
        top = f", top {cfg['hyperparameters'].get('scanTop')}" if mode == "fast" else ""
        method += f" ({mode} scan {ls[0]}-{ls[-1]}{top})" if ls else ""
    elif method == "memit":
        ls = cfg["hyperparameters"].get("memitLayers", [])
        method += f" (layers {ls[0]}-{ls[-1]})" if ls else ""
    # Runs that say what produced them (method, scan rule, null space, anchor) are named by that line.
    summary = os.path.join(d, "summary.json")
    named = json.load(open(summary)).get("algorithm") if os.path.exists(summary) else None
    method = named or method
    out = []
    for i, e in enumerate(log):
        if e.get("ers") is None:
            continue
        part = log[: i + 1]
        mean = lambda k: statistics.mean([x["scores"][k] for x in part if x["scores"].get(k) is not None] or [0])
        vals = [mean("es"), mean("gs"), mean("ls"), e["ers"], e["ors"]]
        s = len(vals) / sum(1 / (v if v > 0 else 1e-4) for v in vals)
        out.append(f"| {method} | {e['index']} | {s:.3f} | " + " | ".join(f"{v:.3f}" for v in vals)
                   + f" | {timing[0]} | {timing[1]} |")
    return out, len(log), cfg["edits"]


print("| method | n | S | ES | GS | LS | ERS | ORS | s per edit | s per roll-back |")
print("|---|---|---|---|---|---|---|---|---|---|")
notes = []
for d in sys.argv[1:]:
    r, done, total = rows(d)
    print("\n".join(r))
    if done < total:
        notes.append(f"{os.path.basename(d.rstrip('/'))}: {done} of {total} edits done")
if notes:
    print("\nStopped early: " + "; ".join(notes) + ".")
