"""``archzoo list``, ``archzoo info MODEL``, ``archzoo papers``: the collection and its cards."""
from __future__ import annotations

import argparse
import os

from archzoo.errors import ArchzooError, CLIError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the collection's models")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern (default: *)")
    p.add_argument("--paper", help="only this paper's models (P22, 22, slug or arXiv id)")
    p.set_defaults(func=run_list)

    p = sub.add_parser("info", help="a model's paper, reported numbers, ours, default config, citation")
    p.add_argument("model")
    p.add_argument("--no-count", action="store_true", help="skip counting our parameters/FLOPs")
    p.set_defaults(func=run_info)

    p = sub.add_parser("papers", help="the 58 papers and their status")
    p.add_argument("--markdown", action="store_true", help="print the README's paper table")
    p.add_argument("--write-readme", metavar="README", help="replace the paper table in this README file")
    p.add_argument("--check", action="store_true",
                   help="run `archzoo verify` (cached counts) and `archzoo reference check` on every reference file, "
                        "and record the verdicts in archzoo/papers/_status.toml, which the table reads")
    p.set_defaults(func=run_papers)


def run_list(args: argparse.Namespace) -> int:
    from archzoo.papers import card_for_model
    from archzoo.registry import is_archzoo_model, list_models

    names = list_models(args.pattern, paper=args.paper)
    if not names:
        import difflib

        from archzoo.registry import model_names

        close = difflib.get_close_matches(args.pattern.strip("*"), model_names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise CLIError(f"no model of the collection matches {args.pattern!r}"
                       + (f" in paper {args.paper}" if args.paper else "") + hint)
    print(f"{'model':40s} {'provider':8s} paper")
    for n in names:
        hit = card_for_model(n)
        print(f"{n:40s} {'archzoo' if is_archzoo_model(n) else 'timm':8s} {hit[0].pid + ' ' + hit[0].slug if hit else ''}")
    print(f"{len(names)} model(s)")
    return 0


def run_info(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    from archzoo.papers import card_for_model
    from archzoo.registry import check_model_name, is_archzoo_model
    from archzoo.verify import verify_variant

    check_model_name(args.model)
    console = Console(file=sys.stdout, width=160)
    hit = card_for_model(args.model)
    import timm

    cfg = timm.models.get_pretrained_cfg(args.model)
    console.print(f"[bold]{args.model}[/] ({'archzoo' if is_archzoo_model(args.model) else 'timm'} implementation)")
    if hit is None:
        console.print("no paper card names this model")
    else:
        card, variant = hit
        console.print(f"paper: {card.pid} {card.title}")
        console.print(f"arXiv: {card.arxiv_url}    authors' code: {card.repo_url or 'none'}")
        console.print(f"status: {card.status}" + (f" ({card.status_note})" if card.status_note else ""))
        table = Table(title=f"{variant.name} at {variant.img_size}x{variant.img_size}")
        for col in ("figure", "paper", "source", "ours", "verdict"):
            table.add_column(col)
        rep = None if args.no_count else verify_variant(card, variant)
        checks = {c.what: c for c in (rep.checks if rep else [])}
        rows = [("params (M)", variant.params_m, variant.params_source),
                ("params (exact)", variant.reference_params, "authors' code"),
                (f"{variant.flops_kind} (G)", variant.flops_g, variant.flops_source)]
        for r in variant.results:
            what = f"{r.metric} {r.dataset}" + (f" @{r.img_size}" if r.img_size else "") + (f" ({r.setting})" if r.setting else "")
            rows.append((what, r.value, r.source))
        for what, val, src in rows:
            if val is None:
                continue
            c = checks.get(what)
            ours = "-" if c is None else (f"{int(c.ours):,}" if what == "params (exact)" else f"{c.ours:.3f}")
            table.add_row(what, f"{val:,}" if isinstance(val, int) else f"{val:g}", src, ours, c.verdict if c else "-")
        console.print(table)
        if rep and rep.error:
            console.print(f"[red]could not count: {rep.error}[/]")
        for figure, text in variant.deviations.items():
            console.print(f"known deviation ({figure}): {text}")
        for r in variant.results:
            if r.deviation:
                console.print(f"known deviation ({r.metric} {r.dataset}): {r.deviation}")
        if card.claims:
            console.print(f"claims: {', '.join(f'{card.pid}:{c.id}' for c in card.claims)} (archzoo reproduce)")
        console.print(f"cite: {card.citation()}")
    if cfg is not None:
        keep = ("input_size", "crop_pct", "interpolation", "mean", "std", "num_classes", "first_conv", "classifier", "license")
        console.print("default cfg: " + ", ".join(f"{k}={getattr(cfg, k)}" for k in keep if getattr(cfg, k, None) is not None))
    return 0


STATUS_FILE = "_status.toml"


def status_path():
    from archzoo.papers import CARD_DIR

    return CARD_DIR / STATUS_FILE


def load_status(path=None) -> dict:
    """The recorded check results (``archzoo papers --check``): {"verify": {slug: {variant name: verdict}},
    "reference": {file name: {"family": ..., "status": ...}}, ...}; empty when never recorded."""
    import tomllib

    p = path or status_path()
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def _verdict(rep) -> str:
    if rep.error:
        return "error"
    if not rep.ok:
        return "FAIL"
    return "explained" if any(not c.ok for c in rep.checks) else "pass"


def check_status(progress: bool = True) -> dict:
    """Run archzoo verify on every variant and archzoo reference check on every reference file."""
    import datetime
    import platform

    import timm
    import torch

    from archzoo import __version__
    from archzoo.reference import check_reference, reference_dir
    from archzoo.verify import verify

    status: dict = {
        "date": datetime.date.today().isoformat(),
        "archzoo_version": __version__,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, timm {timm.__version__}",
        "verify": {},
        "reference": {},
    }
    for rep in verify(progress=progress):
        status["verify"].setdefault(rep.card.slug, {})[rep.variant.name] = _verdict(rep)
    ref_dir = reference_dir()
    if ref_dir is None:
        old = load_status().get("reference", {})
        print("no reference directory found: keeping the recorded reference results")
        status["reference"] = old
    else:
        for f in sorted(ref_dir.glob("*.safetensors")):
            try:
                r = check_reference(f)
                status["reference"][f.name] = {"family": r.family, "status": r.status}
            except ArchzooError as e:  # an unreadable file: recorded, not fatal
                status["reference"][f.name] = {"family": "", "status": f"error: {e}"}
    return status


def write_status(status: dict, path=None) -> None:
    from archzoo.papers import _toml_key, _toml_value

    lines = ["# Generated by `archzoo papers --check` (do not edit): the verdicts of `archzoo verify` and",
             "# `archzoo reference check` that the README's paper table (`archzoo papers --markdown`) shows.",
             f"date = {_toml_value(status['date'])}",
             f"archzoo_version = {_toml_value(status['archzoo_version'])}",
             f"machine = {_toml_value(status['machine'])}", ""]
    for slug in sorted(status["verify"]):
        lines.append(f"[verify.{_toml_key(slug)}]")
        lines += [f"{_toml_key(name)} = {_toml_value(v)}" for name, v in status["verify"][slug].items()]
        lines.append("")
    lines.append("[reference]")
    lines += [f"{_toml_key(name)} = {_toml_value(v)}" for name, v in sorted(status["reference"].items())]
    (path or status_path()).write_text("\n".join(lines) + "\n", encoding="utf-8")


def verified_variants(card) -> list[str]:
    """Names of the variants `archzoo verify` checks for a card (implemented, with reported numbers)."""
    return [v.name for v in card.variants if v.implemented and v.has_numbers]


def _fraction(k: int, n: int, extra: str = "") -> str:
    return "-" if n == 0 else f"{k}/{n}{extra}"


def papers_markdown(status: dict | None = None) -> str:
    """The README's paper table, generated from the cards and the recorded check results
    (``archzoo papers --check`` writes them; reading them keeps this instant)."""
    from archzoo.papers import load_cards

    status = load_status() if status is None else status
    verdicts = status.get("verify", {})
    refs = status.get("reference", {})
    lines = ["| # | paper | kind | status | models | verified | reference files | claims |",
             "|---|---|---|---|---|---|---|---|"]
    for c in load_cards():
        title = c.title.replace("|", "\\|")
        link = f"[{title}]({c.arxiv_url})" if c.arxiv else title
        n_models = sum(1 for v in c.variants if v.implemented)
        n_missing = sum(1 for v in c.variants if not v.implemented)
        models = f"{n_models}" + (f" (+{n_missing} not yet)" if n_missing else "")
        status_text = c.status + (f": {c.status_note}" if c.status_note else "")
        names = verified_variants(c)
        got = verdicts.get(c.slug, {})
        ok = sum(1 for n in names if got.get(n) in ("pass", "explained"))
        expl = sum(1 for n in names if got.get(n) == "explained")
        unchecked = sum(1 for n in names if n not in got)
        verified = _fraction(ok, len(names), (f" ({expl} explained)" if expl else "")
                             + (f" ({unchecked} unchecked)" if unchecked else ""))
        files = [r for r in refs.values() if r.get("family") in c.families]
        reference = _fraction(sum(1 for r in files if r.get("status") == "pass"), len(files))
        claims = _fraction(sum(1 for cl in c.claims if cl.reproduced), len(c.claims))
        lines.append(f"| {c.pid} | {link} | {c.kind} | {status_text.replace('|', '/')} | {models} | {verified} "
                     f"| {reference} | {claims} |")
    legend = ("\nverified: variants whose parameter/FLOP counts match the paper's (`archzoo verify`; explained: a "
              "known deviation recorded on the card); reference files: the authors'-code reference vectors of the "
              "paper's families that archzoo reproduces (`archzoo reference check`); claims: the paper's claims "
              "reproduced at the full budget (`archzoo reproduce`) / claims on the card. ")
    if status.get("date"):
        legend += (f"Checked {status['date']} with archzoo {status.get('archzoo_version', '?')} "
                   f"({status.get('machine', '?')}) by `archzoo papers --check`.")
    else:
        legend += "Not checked yet: run `archzoo papers --check`."
    return "\n".join(lines) + "\n" + legend + "\n"


README_START = "<!-- papers:start (generated by `archzoo papers --write-readme README.md`) -->"
README_END = "<!-- papers:end -->"


def readme_table(readme_text: str) -> str:
    """The generated part of a README (between the markers); raises CLIError if absent."""
    start = readme_text.find(README_START)
    end = readme_text.find(README_END, max(start, 0))
    if start < 0 or end < 0:
        raise CLIError(f"the README has no paper-table markers ({README_START} ... {README_END})")
    start += len(README_START)
    return readme_text[start:end].strip("\n") + "\n"


def run_papers(args: argparse.Namespace) -> int:
    if args.check:
        status = check_status()
        write_status(status)
        bad = sum(1 for d in status["verify"].values() for v in d.values() if v in ("FAIL", "error"))
        ref_bad = sum(1 for r in status["reference"].values() if r["status"] != "pass")
        print(f"recorded in {status_path()}: {sum(len(d) for d in status['verify'].values())} variants verified "
              f"({bad} failing), {len(status['reference'])} reference files ({ref_bad} not passing)")
        if not (args.write_readme or args.markdown):
            return 0
    if args.write_readme:
        from pathlib import Path

        path = Path(args.write_readme)
        text = path.read_text(encoding="utf-8")
        readme_table(text)  # raises when the markers are missing
        head, rest = text.split(README_START, 1)
        tail = rest.split(README_END, 1)[1]
        path.write_text(f"{head}{README_START}\n{papers_markdown()}{README_END}{tail}", encoding="utf-8")
        from archzoo.papers import load_cards

        print(f"wrote the paper table ({len(load_cards())} papers) into {path}")
        return 0
    if args.markdown:
        print(papers_markdown(), end="")
        return 0
    from archzoo.papers import load_cards

    for c in load_cards():
        print(f"{c.pid:4s} {c.status:16s} {c.kind:9s} {c.title}")
    return 0
