"""The detection benchmark's report: Markdown tables and the JSON file (:mod:`.detect` runs it).

:func:`render_markdown` and :func:`dump_report` turn a report (:func:`~.detect.new_report`, methods
filled in) into the Markdown tables and the JSON file; :func:`method_table` is the photo slices'
table, :func:`censor_table` the screenshot, censor and snippet slices' (:mod:`.censor`).
"""

from __future__ import annotations

import json
import platform
import re

from ..detect import CROP_SIZE
from .detect import BLOCK_TOLERANCE, METHOD_TITLES, PROTOTYPE, SLICES, _num, _pct

__all__ = ["method_table", "censor_table", "prototype_table", "render_markdown", "dump_report", "environment",
           "threshold_text"]


def _block_cell(block: dict | None) -> str:
    if block is None:
        return "–"
    return f"{_pct(block['share_within'], 1)} ({block['within']}/{block['images']})"


def method_table(summary: dict) -> str:
    """One method's Markdown table: a row per slice and the overall row (:func:`summarise`)."""
    head = ("| slice | images | accuracy | precision | recall | F1 | FPR | block size within 10% | "
            "one box (IoU ≥ 0.7) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for name, m in summary["slices"].items():
        iou = m.get("iou")
        rows.append(f"| {name} | {m['support']} | {_num(m['accuracy'])} | {_num(m['precision'])} | "
                    f"{_num(m['recall'])} | {_num(m['f1'])} | {_pct(m['fpr'])} | {_block_cell(m['block'])} | "
                    f"{_pct(iou['share_over_0.7'] if iou else None, 1)} |")
    o = summary["overall"]
    rows.append(f"| **overall** | **{o['support']}** | **{_num(o['accuracy'])}** | **{_num(o['precision'])}** | "
                f"**{_num(o['recall'])}** | **{_num(o['f1'])}** | **{_pct(o['fpr'])}** | "
                f"**{_block_cell(summary['block_fully_pixelated'])}** | |")
    return head + "\n" + "\n".join(rows)


def censor_table(summary: dict) -> str:
    """The screenshot, censor and snippet slices' Markdown table (:func:`~.detect.summarise`)."""
    head = ("| slice | images | accuracy | recall | FPR | block size within 10% | box IoU (mean) | IoU ≥ 0.5 | "
            "IoU ≥ 0.7 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for name, m in summary["censor_slices"].items():
        iou = m.get("iou")
        rows.append(f"| {name} | {m['support']} | {_num(m['accuracy'])} | {_num(m['recall'])} | {_pct(m['fpr'])} | "
                    f"{_block_cell(m['block'])} | {_num(iou['mean'] if iou else None, 3)} | "
                    f"{_pct(iou['share_over_0.5'] if iou else None, 1)} | "
                    f"{_pct(iou.get('share_over_0.7') if iou else None, 1)} |")
    o = summary["censor_overall"]
    rows.append(f"| **all of these** | **{o['support']}** | **{_num(o['accuracy'])}** | **{_num(o['recall'])}** | "
                f"**{_pct(o['fpr'])}** | | | | |")
    return head + "\n" + "\n".join(rows)


def prototype_table() -> str:
    """The prototype's reported figures (:data:`PROTOTYPE`) as a Markdown table."""
    lines = ["| method | test set | precision | recall | F1 | accuracy | FPR |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in PROTOTYPE:
        lines.append(f"| {r['method']} | {r['test set']} | {_num(r['precision'], 3)} | {_num(r['recall'], 3)} | "
                     f"{_num(r['f1'], 3)} | {_num(r['accuracy'], 3)} | {_pct(r['fpr'])} |")
    return "\n".join(lines)


def threshold_text(threshold: float, small: float | None = None) -> str:
    """``"threshold T"``, and the one for small images (:meth:`~deepclarity.detect.Detector.threshold_for`)
    when there is one of its own."""
    text = f"threshold {threshold:.4f}"
    if small is not None and small != threshold:
        text += f"; {small:.4f} under {CROP_SIZE} px on the short side"
    return text


def render_markdown(report: dict, cm_links: dict[str, str]) -> str:
    """The report (:func:`new_report`, methods filled in) as Markdown: the command, the benchmark,
    per method its table, block-size summary, confusion-matrix image (``cm_links``: method -> link)
    and targets, then the prototype's figures and the environment."""
    bench = report["benchmark"]
    parts = [f"`{report['command']}`", ""]
    per_set = ", ".join(f"{k} {v}" for k, v in bench["sets"].items())
    if "suites" in bench:
        names = ", ".join(s["name"] for s in bench["slices"])
        parts.append(f"Detection benchmark, suites {', '.join(bench['suites'])}: {bench['photos']} source images "
                     f"({per_set}; never trained on), {bench['images']} images (slices: {names}), seed "
                     f"{bench['seed']}, threshold {report['threshold']}. Labels: pixelated = positive. FPR = false "
                     "positives / negatives; \"–\" = undefined. Censor slices: block size = the box best "
                     f"overlapping the truth (else the image's estimate) within {BLOCK_TOLERANCE:.0%} of the true "
                     "block; box IoU = union of predicted boxes against union of true boxes (0 when none).")
    else:
        parts.append(f"Detection benchmark: {bench['photos']} photos ({per_set}"
                 f"; never trained on) × {len(SLICES)} slices = {bench['images']} images, seed {bench['seed']}, "
                 f"threshold {report['threshold']}. Labels: pixelated = positive. FPR = false positives / "
                 "negatives; \"–\" = undefined (e.g. precision on a slice without pixelated images). "
                 f"Block size: share of fully pixelated images whose estimate is within "
                 f"{BLOCK_TOLERANCE:.0%} of the truth (no estimate = miss); one box: share of fully "
                 "pixelated images whose boxes cover the image with IoU >= 0.7 (not detected = miss).")
    for method, res in report["methods"].items():
        threshold = f", {threshold_text(res['threshold'], res.get('threshold_small'))}" if "threshold" in res else ""
        parts += ["", f"**{METHOD_TITLES.get(method, method)}** (`{res['model']}`{threshold})", ""]
        if "skipped" in res:
            parts.append(f"skipped: {res['skipped']}")
            continue
        s = res["summary"]
        if "censor_slices" in s:
            parts += [censor_table(s), ""]
        if not s["slices"]:
            parts.append(f"Detection took {res['seconds']:.1f} s ({res['images_per_s']:.2f} images/s).")
            continue
        parts.append(method_table(s))
        bf, bb = s["block_fully_pixelated"], s["block_factor_bins"]
        median = ("undefined (over half missing)" if bf["median_rel_error"] is None and bf["images"]
                  else _pct(bf["median_rel_error"], 1))
        parts += ["", f"Block size, all fully pixelated slices: {_pct(bf['share_within'], 1)} within 10% "
                      f"({bf['within']}/{bf['images']}, {bf['returned']} estimates returned), median relative "
                      f"error {median} (returned only: {_pct(bf['median_rel_error_returned'], 1)}); "
                      f"plain factor bins only: {_pct(bb['share_within'], 1)} ({bb['within']}/{bb['images']}). "
                      f"Detection took {res['seconds']:.1f} s ({res['images_per_s']:.2f} images/s)."]
        if method in cm_links:
            parts += ["", f"![confusion matrix, {method}]({cm_links[method]})"]
        if res.get("targets"):
            parts += ["", "Targets (method 2):", "", "| target | measured | met |", "|---|---:|---|"]
            for t in res["targets"]:
                met = "–" if t["met"] is None else ("yes" if t["met"] else "**no**")
                parts.append(f"| {t['target']} | {t['shown']} | {met} |")
    parts += ["", "Prototype (as reported by the prototype, measured on its own Flickr2K/DIV2K test sets, "
                  "not comparable one-to-one):", "", prototype_table(), "", report["environment"]]
    return "\n".join(parts) + "\n"


def dump_report(report: dict) -> str:
    """``report`` as indented JSON, except that each per-image record stays on one line (a full run
    holds thousands; one per line keeps the file small and its diffs readable)."""
    lines: dict[str, str] = {}
    skeleton = json.loads(json.dumps(report, allow_nan=False))
    for res in skeleton["methods"].values():
        if "images" in res:
            marks = []
            for rec in res["images"]:
                mark = f"@@record{len(lines)}@@"
                lines[mark] = json.dumps(rec, allow_nan=False, separators=(", ", ": "))
                marks.append(mark)
            res["images"] = marks
    text = json.dumps(skeleton, indent=1, allow_nan=False)
    return re.sub(r'"(@@record\d+@@)"', lambda m: lines[m.group(1)], text) + "\n"


def environment(device: str, methods: list[str]) -> tuple[str, dict]:
    """The software, machine, threads, device and weight checksums of a run: one line for the
    Markdown and the same as a dict for the JSON."""
    import torch

    from .. import __version__
    from ..detect import METHODS
    from ..models import get_spec

    shas = {}
    for m in methods:
        if m in METHODS:
            card = get_spec(METHODS[m]).card
            shas[METHODS[m]] = (card or {}).get("sha256")
    text = (f"deepclarity {__version__}, torch {torch.__version__}, {platform.machine()}, "
            f"{torch.get_num_threads()} CPU threads, device {device}; weights sha256: "
            + ", ".join(f"{k} {v or 'n/a'}" for k, v in shas.items()))
    return text, {"deepclarity": __version__, "torch": torch.__version__, "machine": platform.machine(),
                  "threads": torch.get_num_threads(), "device": device, "weights_sha256": shas}


