"""Gather what scripts/device-check.sh left in its folder into results.json and results.md (standard library only,
so it runs whatever the setup phase managed to install).

    python scripts/device_report.py DEVICE_CHECK_FOLDER
"""

import json
import re
import sys
from pathlib import Path

PHASES = ("setup", "tests-device", "tests", "bench")
SUMMARY = re.compile(r"\b\d+ (passed|failed|error|errors|skipped)\b")


def read(path: Path) -> str:
    return path.read_text(errors="replace").strip() if path.is_file() else ""


def phase(folder: Path, name: str) -> dict:
    log = read(folder / f"{name}.log").splitlines()
    rc = read(folder / f"{name}.rc")
    status = "not run" if not rc else "passed" if rc == "0" else "out of time" if rc in ("124", "137") else "failed"
    summary = next((line.strip("= ") for line in reversed(log) if SUMMARY.search(line)), None)
    failures = [line for line in log if line.startswith(("FAILED ", "ERROR "))]
    return {"status": status, "exit": int(rc) if rc.lstrip("-").isdigit() else None, "summary": summary,
            "failures": failures, "log_tail": log[-15:]}


def markdown(results: dict) -> str:
    lines = [f"# Device check: {results['gpu'] or 'no GPU found'}", "",
             f"Commit {results['commit']}; torch, CUDA, GPU available: {results['torch']}.", "",
             "| phase | status | summary |", "|---|---|---|"]
    for name, p in results["phases"].items():
        lines.append(f"| {name} | {p['status']} | {p['summary'] or ''} |")
    for name, p in results["phases"].items():
        if p["failures"]:
            lines += ["", f"Failures in {name}:", ""] + [f"- `{f}`" for f in p["failures"][:30]]
    bench = results.get("bench")
    if bench and bench.get("error"):
        lines += ["", f"GPU benchmark not run: {bench['error']}"]
    elif bench:
        lines += ["", f"GPU benchmark: {', '.join(bench['modalities'])} (own baselines as shipped), {bench['steps']} "
                  f"steps, {bench['precision']}; {bench['flops_per_image'] / 1e9:.2f} GFLOP per image; "
                  f"bf16 peak {bench['bf16_peak_tflops'] or 'unknown'} TFLOP/s; target "
                  f"{bench['target_images_per_second']} images/s.", "",
                  "| fused | compiled | batch | images/s | TFLOP/s | of bf16 peak | warm-up s |", "|---|---|---|---|---|---|---|"]
        for row in bench["rows"]:
            if "images_per_second" in row:
                frac = f"{100 * row['fraction_of_peak']:.2f}%" if row.get("fraction_of_peak") is not None else "-"
                lines.append(f"| {row['fuse']} | {row['compiled']} | {row['batch']} | {row['images_per_second']:.1f} | "
                             f"{row['tflops']:.1f} | {frac} | {row['warmup_seconds']:.1f} |")
            else:
                lines.append(f"| {row['fuse']} | {row['compiled']} | {row['batch']} | "
                             f"{row.get('error') or row.get('skipped')} | | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    folder = Path(sys.argv[1])
    bench = folder / "bench.json"
    results = {"gpu": read(folder / "gpu.txt"), "commit": read(folder / "commit.txt"), "torch": read(folder / "torch.txt"),
               "phases": {name: phase(folder, name) for name in PHASES},
               "bench": json.loads(bench.read_text()) if bench.is_file() else None}
    (folder / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (folder / "results.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
