"""``archzoo bench MODEL...``: parameters, FLOPs, throughput, latency and memory on this machine."""
from __future__ import annotations

import argparse

_SAME_MODEL = "\0eval-form"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure models side by side (interleaved repeats, medians)")
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--batch", type=int, default=16, help="batch size for throughput (default 16)")
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile the models (inductor, weights frozen as constants: inference timings)")
    p.add_argument("--deploy", action="store_true", help="benchmark the deploy form (fused BN, re-parameterised)")
    p.add_argument("--train", action="store_true", help="also time training steps")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    p.add_argument("--vs", nargs="?", const=_SAME_MODEL, metavar="MODEL",
                   help="print ratios against MODEL; with --deploy and no MODEL: deploy form vs eval form")
    p.add_argument("--out", help="write every figure as JSON (.json) or CSV (.csv)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from archzoo.bench import BenchSpec, bench, check_output_path, print_results, ratios, write_results
    from archzoo.errors import CLIError
    from archzoo.registry import check_model_name

    for m in args.models:
        check_model_name(m)
    if args.out:
        check_output_path(args.out)  # before minutes of benchmarking
    if args.vs == _SAME_MODEL:
        if not args.deploy:
            raise CLIError("--vs without a model compares deploy and eval forms: add --deploy, or name a model")
        specs = [s for m in args.models for s in (BenchSpec(m), BenchSpec(m, deploy=True))]
    else:
        specs = [BenchSpec(m, deploy=args.deploy) for m in args.models]
        if args.vs and args.vs not in args.models:
            check_model_name(args.vs)
            specs.append(BenchSpec(args.vs, deploy=args.deploy))
    results = bench(specs, device=args.device, batch=args.batch, img_size=args.img_size, dtype=args.dtype,
                    channels_last=args.channels_last, compile=args.compile, train=args.train,
                    repeats=args.repeats, memory=not args.no_memory)
    vs = []
    if args.vs == _SAME_MODEL:
        for m in args.models:
            pair = [r for r in results if r.model == m]
            vs += ratios(pair, pair[0].name)
    elif args.vs:
        vs = ratios(results, next(r.name for r in results if r.model == args.vs))
    print_results(results, vs)
    if args.out:
        print(f"wrote {write_results(results, args.out, vs)}")
    return 0
