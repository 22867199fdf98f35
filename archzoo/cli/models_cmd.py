"""``archzoo list``, ``archzoo info MODEL``, ``archzoo papers``: the collection and its cards."""
from __future__ import annotations

import argparse


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
    p.set_defaults(func=run_papers)


def run_list(args: argparse.Namespace) -> int:
    from archzoo.papers import card_for_model
    from archzoo.registry import is_archzoo_model, list_models

    names = list_models(args.pattern, paper=args.paper)
    for n in names:
        hit = card_for_model(n)
        print(f"{n:40s} {'archzoo' if is_archzoo_model(n) else 'timm':8s} {hit[0].pid + ' ' + hit[0].slug if hit else ''}")
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
                (f"{variant.flops_kind} (G)", variant.flops_g, variant.flops_source),
                ("top-1 (%)", variant.top1, variant.top1_source)]
        for what, val, src in rows:
            if val is None:
                continue
            c = checks.get(what)
            ours = "-" if c is None else (f"{int(c.ours):,}" if what == "params (exact)" else f"{c.ours:.3f}")
            table.add_row(what, f"{val:,}" if isinstance(val, int) else f"{val:g}", src, ours, c.verdict if c else "-")
        console.print(table)
        if rep and rep.error:
            console.print(f"[red]could not count: {rep.error}[/]")
        if variant.deviation:
            console.print(f"known deviation: {variant.deviation}")
        console.print(f"cite: {card.citation()}")
    if cfg is not None:
        keep = ("input_size", "crop_pct", "interpolation", "mean", "std", "num_classes", "first_conv", "classifier", "license")
        console.print("default cfg: " + ", ".join(f"{k}={getattr(cfg, k)}" for k in keep if getattr(cfg, k, None) is not None))
    return 0


def papers_markdown() -> str:
    """The README's paper table, generated from the cards."""
    from archzoo.papers import load_cards

    lines = ["| # | paper | kind | status | models |", "|---|---|---|---|---|"]
    for c in load_cards():
        title = c.title.replace("|", "\\|")
        link = f"[{title}]({c.arxiv_url})" if c.arxiv else title
        n_models = sum(1 for v in c.variants if v.implemented)
        n_missing = sum(1 for v in c.variants if not v.implemented)
        models = f"{n_models}" + (f" (+{n_missing} not yet)" if n_missing else "")
        status = c.status + (f": {c.status_note}" if c.status_note else "")
        lines.append(f"| {c.pid} | {link} | {c.kind} | {status.replace('|', '/')} | {models} |")
    return "\n".join(lines) + "\n"


def run_papers(args: argparse.Namespace) -> int:
    if args.markdown:
        print(papers_markdown(), end="")
        return 0
    from archzoo.papers import load_cards

    for c in load_cards():
        print(f"{c.pid:4s} {c.status:16s} {c.kind:9s} {c.title}")
    return 0
