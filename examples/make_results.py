"""Gather every full run's ``results/<name>/results.json`` into RESULTS.md.

    python examples/make_results.py

Each experiment contributes table rows ``{"what", "measured", "report"}`` (the report's number
where there is one) and the command that produced them. Quick (smoke-test) runs are ignored.
The runs of examples/translate.py, ``results/translation/<run>/results.json``, make one
section, a table row per run (:data:`TRANSLATION_CHOSEN` first).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["init_schemes", "learning_rate", "activations", "usps_conv1d", "usps_conv1d_adamw",
         "usps_conv1d_sweeps",
         "fashion_autoencoders", "latent_tsne", "denoising", "conv_autoencoder",
         "fashion_classifier", "usps_bn_cnn", "usps_bn_cnn_noaug", "char_lm"]
# section titles beside the experiment's name, where the name alone says little
TITLES = {"char_lm": "Character-level language model"}
# a variant run -> the run it varies: its section also gets a table of its rows beside the base's
COMPARE = {"usps_conv1d_adamw": "usps_conv1d"}


def load_all(results: Path) -> list[dict]:
    found = {}
    for path in sorted(results.glob("*/results.json")):
        payload = json.loads(path.read_text())
        if not payload.get("quick"):
            found[payload["experiment"]] = payload
    ordered = [found.pop(n) for n in ORDER if n in found]
    return ordered + [found[k] for k in sorted(found)]


def sweep_line(s: dict) -> str:
    """How an experiment's fnn.sweep ran: trials, where, wall clock."""
    reused = f", {s['skipped']} reused from an earlier run" if s.get("skipped") else ""
    failed = f", {s['failed']} failed" if s.get("failed") else ""
    return (f"fnn.sweep: {s['trials']} runs ({s['ran']} run now{reused}{failed}) on "
            f"{s['where']}, {s['seconds']:.1f} s wall clock.")


def optimizer(exp: dict) -> str:
    """The optimiser a run used, from its settings (``"SGD lr 0.1"`` when it says no more)."""
    settings = exp.get("metrics", {}).get("settings", {})
    return settings.get("optimizer_description") or \
        f"{settings.get('optimizer', '?').upper()} lr {settings.get('lr', '?')}"


def beside(exp: dict, base: dict) -> list[str]:
    """Table lines: the variant's measured numbers beside the base run's, row for row."""
    rows, base_rows = exp.get("rows") or [], base.get("rows") or []
    if not rows or len(rows) != len(base_rows):
        return []
    lines = [f"Beside `{base['experiment']}` (same protocol and seeds):", "",
             f"| what | {base['experiment']}: {optimizer(base)} | {exp['experiment']}: "
             f"{optimizer(exp)} |", "|---|---|---|"]
    lines += [f"| {b['what']} | {b['measured']} | {r['measured']} |" for b, r in zip(base_rows, rows)]
    return lines + [""]


# results/translation/<run>/results.json: several runs of examples/translate.py, one section;
# the chosen run (best validation BLEU, see its note) and the others as comparison rows
TRANSLATION = "translation"
TRANSLATION_CHOSEN = "transformer_256"


def load_translation(results: Path) -> dict[str, dict]:
    """The full (not quick) runs under ``results/translation/``, by folder name."""
    runs = {}
    for path in sorted((results / TRANSLATION).glob("*/results.json")):
        payload = json.loads(path.read_text())
        if not payload.get("quick"):
            runs[path.parent.name] = payload
    return runs


def run_options(command: str) -> str:
    """A translate.py command's settings: its options but ``--models``, ``--out`` and
    ``--no-progress`` (``"defaults"`` when none)."""
    kept: list[str] = []
    skip = False
    for w in shlex.split(command)[2:]:
        if skip or w == "--no-progress":
            skip = False
            continue
        if w in ("--models", "--out"):
            skip = True
            continue
        kept.append(w)
    return " ".join(kept) or "defaults"


def repo_link(path: str, label: str) -> str:
    """A markdown link to a repository file, relative to RESULTS.md."""
    return f"[{label}]({path})"


def translation_rows(runs: dict[str, dict], chosen: str, link=repo_link) -> list[str]:
    """The table: one row per (run, model), the chosen run first, then the baseline row."""
    order = [chosen] + sorted(r for r in runs if r != chosen)
    beams = sorted({k for r in runs.values() for m in r["metrics"]["models"].values()
                    for k in m if k.startswith("beam")})
    lines = ["| run | model, settings | params | epochs | train wall time | greedy BLEU | "
             + " | ".join(f"beam {b[4:]} BLEU" for b in beams) + " |",
             "|---|---|---:|---:|---:|---:|" + "---:|" * len(beams)]
    for name in order:
        run = runs[name]
        for kind, m in run["metrics"]["models"].items():
            label = f"**{name}** (chosen)" if name == chosen else name
            beam = " | ".join(f"{m[b]['bleu']:.1f}" if b in m else "" for b in beams)
            lines.append(f"| {link(f'results/{TRANSLATION}/{name}', label)} | {kind}, "
                         f"`{run_options(run['command'])}` | {m['params']:,} | {m['epochs']} | "
                         f"{m['train_seconds']:.0f} s | {m['greedy']['bleu']:.1f} | {beam} |")
    base = runs[chosen]["metrics"]["baseline_bleu"]
    lines.append("| baseline | word by word: each English word's most probable French word "
                 f"(IBM model 1 on the training pairs) | | | | {base:.1f} |"
                 + " |" * len(beams))
    return lines + [""]


def translation_why(m: dict, params: int, run: str, link=repo_link) -> list[str]:
    """Why the target was (not) reached, from the run's data statistics."""
    best, target = m["best"]["bleu"], m["target"]
    if m["best"]["meets_target"]:
        return [f"Target corpus BLEU ≥ {target:g}: reached ({best:.1f}).", ""]
    text = (f"**Target corpus BLEU ≥ {target:g}: not reached.** The chosen model scores "
            f"{best:.1f} on the test split ({m['best']['model']}, beam search).")
    d = m.get("data")
    curves = link(f"results/{TRANSLATION}/{run}/curves.png", "curves.png")
    if d:
        text += (
            f" Why: (1) the split is by English sentence, so all {d['test_sentences']:,} test "
            f"sentences are unseen in training (none of their translations was learnt by "
            f"heart); (2) the data are small, {d['train_pairs']:,} training pairs "
            f"({d['train_sentences_en']:,} distinct English sentences) for {params:,} "
            f"parameters: the validation loss levels off while the training loss keeps "
            f"falling ({curves}), dropout "
            f"notwithstanding; (3) {d['test_unk_fr']:.1%} of the test references' French "
            f"words and {d['test_unk_en']:.1%} of the test English words are outside the "
            f"training vocabularies (rare or unseen words are `<unk>`), and an `<unk>` never "
            f"matches a reference; (4) the sentences are short ({d['test_mean_words_en']:.1f} "
            f"English tokens on average, punctuation included) with "
            f"{d['references_per_test_sentence']:.2f} "
            f"references each: a single wrong word costs a large share of a sentence's "
            f"n-grams, and few references leave few other wordings to match.")
    return [text, ""]


def translation_section(runs: dict[str, dict], chosen: str = TRANSLATION_CHOSEN, *,
                        title: str = "## translation: English to French with encoder-decoders",
                        link=repo_link) -> list[str]:
    """RESULTS.md's translation section: the chosen run's command and note, the table of
    every run beside the baseline, the target and why, the figures."""
    if chosen not in runs:
        return []
    run = runs[chosen]
    m = run["metrics"]
    kind = m["best"]["model"]
    shared = ("the machine's 2 cores were shared with other jobs, so the times are upper "
              "bounds" if m.get("machine_shared") else "the machine was not shared")
    lines = [title, "",
             f"`{run['command']}` — {run['date']}, {run['seconds']} s, {run['machine']}", "",
             "Tatoeba eng-fra, split by English sentence (every translation of a sentence on "
             "one side); corpus BLEU (sacreBLEU 13a) on the test split, all translations of an "
             "English sentence as its references; greedy decoding and beam search. "
             f"Training with {m['threads']} thread; {shared}.", ""]
    if m.get("note"):
        lines += [f"Chosen run: {m['note']}.", ""]
    lines += translation_rows(runs, chosen, link)
    lines += translation_why(m, m["models"][kind]["params"], chosen, link)
    for name in [chosen] + sorted(r for r in runs if r != chosen):
        folder = ROOT / "results" / TRANSLATION / name
        files = sorted(p.name for p in folder.glob("*.png")) + \
            (["examples.md"] if (folder / "examples.md").exists() else [])
        if files:
            lines += [f"Figures of {name}: " + ", ".join(
                link(f"results/{TRANSLATION}/{name}/{f}", f) for f in files), ""]
    return lines


def render(experiments: list[dict], translation: dict[str, dict] | None = None) -> str:
    lines = [
        "# Results",
        "",
        "Generated by `python examples/make_results.py` from `results/*/results.json`; every",
        "number below was measured by the command shown above its table (full runs on the real",
        "data in `../shared/data`, this machine: 2 CPU cores). The report's number is beside ours",
        "where the report gives one. Run times (seconds, seconds per epoch) were measured while",
        "other runs shared the two cores: read them as upper bounds, and compare speed with",
        "`benchmarks/` instead.",
        "",
    ]
    if not experiments:
        lines.append("_No full run has been recorded yet._")
    by_name = {exp["experiment"]: exp for exp in experiments}
    for exp in experiments:
        title = TITLES.get(exp["experiment"])
        lines += [f"## {exp['experiment']}" + (f": {title}" if title else ""), "",
                  f"`{exp['command']}` — {exp['date']}, {exp.get('seconds') or '?'} s, {exp['machine']}",
                  ""]
        for s in exp.get("sweeps") or []:
            lines += [sweep_line(s), ""]
        if exp.get("metrics", {}).get("notes"):  # a paragraph the script wrote from its numbers
            lines += [exp["metrics"]["notes"], ""]
        rows = exp.get("rows") or []
        if rows:
            lines += ["| what | measured | report |", "|---|---|---|"]
            for r in rows:
                lines.append(f"| {r['what']} | {r['measured']} | {r.get('report', '') or ''} |")
            lines.append("")
        if COMPARE.get(exp["experiment"]) in by_name:
            lines += beside(exp, by_name[COMPARE[exp["experiment"]]])
        figures = sorted(p.name for p in (ROOT / "results" / exp["experiment"]).glob("*.png"))
        if figures:
            lines.append("Figures: " + ", ".join(
                f"[{f}](results/{exp['experiment']}/{f})" for f in figures))
            lines.append("")
    lines += translation_section(translation or {})
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    text = render(load_all(ROOT / "results"), load_translation(ROOT / "results"))
    (ROOT / "RESULTS.md").write_text(text)
    print(f"wrote {ROOT / 'RESULTS.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
