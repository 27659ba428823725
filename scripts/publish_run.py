"""Copies a `wilke eval --out DIR` run into docs/results without what must not be committed: the
CounterFact records' text (prompt, subject, targets: the data stays in ../shared/data; the case id names
each record) and, once the run is finished, its patch (megabytes; `wilke eval` on the same settings
reproduces it byte for byte). An unfinished run keeps run.wpatch, so a later session on a new machine
copies the directory back and resumes it (`wilke eval` matches a text-less log by case id).
Standard library only.

  python3 scripts/publish_run.py /work/runs/life13/alphaedit-128 docs/results/alphaedit-128
  python3 scripts/publish_run.py docs/results/rome-64 docs/results/rome-64   # strips in place
"""
import json, os, shutil, sys

TEXT = ("prompt", "subject", "targetNew", "targetTrue", "target_new", "target_true")


def main():
    src, dst = sys.argv[1], sys.argv[2]
    os.makedirs(dst, exist_ok=True)
    for name in ("config.json", "summary.json", "metrics.svg", "norms.svg", "layers.svg"):
        p = os.path.join(src, name)
        if os.path.exists(p) and os.path.abspath(p) != os.path.abspath(os.path.join(dst, name)):
            shutil.copyfile(p, os.path.join(dst, name))
    lines = [json.loads(l) for l in open(os.path.join(src, "edits.jsonl")) if l.strip()]
    for e in lines:
        for k in TEXT:
            e.pop(k, None)
    tmp = os.path.join(dst, "edits.jsonl.tmp")
    with open(tmp, "w") as f:
        for e in lines:
            f.write(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n")
    os.replace(tmp, os.path.join(dst, "edits.jsonl"))
    edits = json.load(open(os.path.join(src, "config.json")))["edits"]
    patch_src, patch_dst = os.path.join(src, "run.wpatch"), os.path.join(dst, "run.wpatch")
    if len(lines) < edits and os.path.exists(patch_src):
        if os.path.abspath(patch_src) != os.path.abspath(patch_dst):
            shutil.copyfile(patch_src, patch_dst + ".tmp")
            os.replace(patch_dst + ".tmp", patch_dst)
        print(f"{dst}: unfinished ({len(lines)}/{edits} edits), run.wpatch kept for resuming")
    elif len(lines) >= edits and os.path.exists(patch_dst):
        os.remove(patch_dst)


if __name__ == "__main__":
    main()
