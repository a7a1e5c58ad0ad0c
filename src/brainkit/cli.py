"""The ``brainkit`` command: parses arguments, calls the API, prints. No logic of its own."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from brainkit.errors import BrainkitError
from brainkit.report.terminal import TERMINAL_WIDTH, format_table, metrics_tables, print_closing


def _cmd_run(args: argparse.Namespace) -> int:
    from brainkit.recipes import run_recipe

    overrides = args.set + ([f"data.cache_dir={args.cache_dir}"] if getattr(args, "cache_dir", None) else [])
    out = args.out
    if out is None and args.command == "demo" and not args.resume:
        out = Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    result = run_recipe(
        args.recipe,
        folder=out,
        preset=args.preset,
        overrides=overrides,
        config_file=args.config,
        resume=args.resume,
        allow_changes=tuple(k.strip() for k in args.allow_changes.split(",") if k.strip()),
    )
    if result.folder is None:  # a secondary process of a multi-process run: rank 0 prints and writes
        return 0
    for title, rows in result.tables.items():
        print(f"{title}\n")
        print(format_table(rows))
        print()
    print_closing(result.notes, result.folder, result.seconds)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    """``brainkit train SOURCE``: ``brainkit run lite_mind`` with SOURCE a YAML/JSON file or a preset name."""
    source = Path(args.source)
    is_file = source.is_file() or source.suffix.lower() in (".yaml", ".yml", ".json")
    args.recipe, args.config, args.preset = "lite_mind", args.source if is_file else None, None
    if not is_file:
        args.preset = args.source
    return _cmd_run(args)


def _cmd_eval(args: argparse.Namespace) -> int:
    from brainkit.recipes import evaluate_run

    metrics = evaluate_run(args.run)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    tables = metrics_tables(metrics)
    for title, rows in tables.items():
        print(f"{title}\n\n{format_table(rows)}\n")
    if not tables:
        print(json.dumps(metrics, indent=2))
    if args.report != "":
        _eval_report(
            Path(args.report) if args.report else Path(args.run) / "eval_report.html", args.run, tables
        )
    return 0


def _eval_report(path: Path, run: str, tables: dict[str, list[dict]]) -> None:
    """The re-evaluated metrics as a report page (the same component as every run's report.html)."""
    from brainkit.report.html import write_report

    titled = dict(tables)
    main_title, main = next(iter(titled.items()), ("metrics", []))
    titled.pop(main_title, None)
    notes = [f"Metrics recomputed from the checkpoints in {run} by `brainkit eval` (nothing trained)."]
    try:
        write_report(path, f"brainkit eval: {Path(run).name}", main, {}, {}, notes, tables=titled)
    except OSError as err:
        print(f"(no report written: {path} is not writable: {err.strerror})", file=sys.stderr)
        return
    print(f"Report: {path}")


def _cmd_import(args: argparse.Namespace) -> int:
    """``brainkit import-weights METHOD PATH --out RUN``: a run folder from a method's released checkpoint."""
    from brainkit.recipes.imported import import_run

    result = import_run(
        args.method, args.path, args.out, preset=args.preset, overrides=args.set, config_file=args.config
    )
    for title, rows in metrics_tables(result.metrics).items():
        print(f"{title}\n\n{format_table(rows)}\n")
    print_closing(result.notes, result.folder, result.seconds)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    """``brainkit predict RUN --input FILE --out FILE``: decoded embeddings (and, with --gallery, retrieval)."""
    import numpy as np

    from brainkit.checkpoint import atomic_write_text
    from brainkit.recipes.loaded import load

    run = load(args.run)
    options = {"subject": args.subject, "space": args.space, "decoder": args.decoder}
    inputs = args.input[0] if len(args.input) == 1 else list(args.input)  # two: a GIFTI pair (left, right)
    if args.mask:
        from brainkit.data.readers.inputs import read_brain_input
        from brainkit.data.readers.volumes import read_volume

        source = read_brain_input(inputs, read_volume(args.mask)[0] != 0)
    else:
        source = inputs
    out = Path(args.out)
    if out.suffix != ".npy":
        raise BrainkitError(f"--out {out}: predictions are written as a .npy file; name it e.g. pred.npy.")
    predicted = run.predict(source, **options)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.npy")
    np.save(tmp, predicted)
    tmp.replace(out)
    print(f"Decoded {len(predicted)} sample(s), each {tuple(predicted.shape[1:])}: {out}")
    if getattr(run.predictor, "targets", None):  # brain_mae: the saved phenotype heads' predictions too
        table = out.with_suffix(".json")
        atomic_write_text(table, json.dumps(run.predictor.phenotypes(source, decoder=args.decoder), indent=1))
        print(f"Predicted phenotypes ({', '.join(run.predictor.targets)}): {table}")
    if args.gallery:
        html = out.with_suffix(".html")
        found = run.retrieve(source, args.gallery, k=args.k, html=html, **options)
        table = out.with_suffix(".json")
        atomic_write_text(
            table, json.dumps({"ids": found["ids"].tolist(), "scores": found["scores"].tolist()})
        )
        print(f"Nearest {args.k} gallery images per sample: {table} (page: {html})")
    return 0


def _cmd_metrics(args: argparse.Namespace) -> int:
    from brainkit.evaluation.image_pairs import read_image_pairs
    from brainkit.evaluation.reconstruction import applicable_n_way, evaluate_reconstructions
    from brainkit.evaluation.reconstruction_tables import metrics_table, write_metrics

    pairs = read_image_pairs(args.folder, image_size=args.image_size)
    n_way, notes = applicable_n_way(len(pairs.names), args.n_way)
    metrics, shuffled = evaluate_reconstructions(
        pairs.real,
        pairs.recon,
        seed=args.seed,
        trials=args.trials,
        n_way=n_way,
        clip_model_dir=args.clip_model_dir,
        pixels=args.pixels,
        reference_weights=args.reference_weights,
    )
    from brainkit.evaluation.literature import absent_columns_note

    notes.append(absent_columns_note(metrics) or "")
    n, k = pairs.recon.shape[:2]
    print(
        f"{n} image pairs ({pairs.layout} layout), {k} sample(s) each, {args.trials} trials, seed {args.seed}\n"
    )
    from brainkit.report.labels import column_label

    print(format_table(metrics_table(metrics, shuffled, label=column_label)))
    import textwrap

    for note in filter(None, notes):  # wrapped to the terminal tables' width
        print(textwrap.fill(note, TERMINAL_WIDTH, initial_indent="- ", subsequent_indent="  "))
    if args.out:
        info = dict(names=pairs.names, folder=args.folder, reference_weights=args.reference_weights)
        write_metrics(args.out, metrics, shuffled, **info)
        print(f"\nWrote {args.out}")
    return 0


def _integers(text: str) -> list[int]:
    """'2,50' -> [2, 50] (an argparse type)."""
    try:
        return [int(word) for word in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, e.g. 2,50; found {text!r}"
        ) from None


def _cmd_bench(args: argparse.Namespace) -> int:
    from brainkit.benchmark import run_bench
    from brainkit.benchmark.table import cell, headline, number

    seeds = None if args.seeds is None else tuple(_integers(args.seeds))
    only = tuple(name.strip() for name in args.only.split(",") if name.strip())
    result = run_bench(
        args.preset, args.out, seeds, only, args.dataset, tuple(args.set), args.jobs, args.threads
    )
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for row in headline(result.rows):
        place = (row["dataset"], row["task"], f"{row['split']}: {row['metric']}")
        groups.setdefault(place, []).append(row)
    for (dataset, task, what), rows in groups.items():
        print(f"\n{dataset}, {task} ({what})\n")
        print(format_table([{"method": r["method"], "role": r["role"], "mean [95 % interval]": cell(r),
                             "chance": number(r["chance"]), "seeds": r["n_seeds"]} for r in rows]))  # fmt: skip
    print(f"\nEvery metric: {result.out / 'bench.csv'}; page: {result.out / 'bench.html'}")
    print(f"Total time: {result.seconds:.0f} s")
    for failure in result.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if result.failures else 0


def _cmd_list(args: argparse.Namespace) -> int:
    from brainkit.data.contract import returns_of
    from brainkit.registry import DATASETS, ENCODERS, MODELS, OBJECTIVES, RECIPES

    print(
        "datasets (design: what a row is; space: of the brain values; on disk: what it reads; recipes: those that"
    )
    print("read any dataset of this design as data of your own, see docs/your_data.md):")
    readers: dict[str, list[str]] = {}
    for name in RECIPES:
        for design in getattr(RECIPES.get(name), "DESIGNS", ()):
            readers.setdefault(design, []).append(name)
    for name in DATASETS:
        design = getattr(returns_of(DATASETS.get(name)), "design", "?")
        details = DATASETS.details(name)
        print(f"  {name:28s} {DATASETS.describe(name)}")
        print(f"  {'':28s}   design: {design}; recipes: {', '.join(readers.get(design, [])) or '-'}")
        print(f"  {'':28s}   space: {details.get('space', '?')}")
        print(f"  {'':28s}   on disk: {details.get('needs', '?')}")
    for title, registry in (("encoders", ENCODERS), ("objectives", OBJECTIVES)):
        print(f"{title}:")
        for name in registry:
            print(f"  {name:28s} {registry.describe(name)}")
    print("models (presets):")
    for name in MODELS:
        presets = ", ".join(sorted(MODELS.get(name).PRESETS)) or "-"
        print(f"  {name:28s} {MODELS.describe(name)}  [{presets}]")
    print("recipes (brainkit run NAME [--preset P]; * = brainkit import-weights reads its released weights):")
    for name in RECIPES:
        presets = ", ".join(sorted(RECIPES.get(name).PRESETS)) or "-"
        mark = "*" if hasattr(RECIPES.get(name), "import_weights") else " "
        print(f" {mark}{name:28s} {RECIPES.describe(name)}  [{presets}]")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brainkit", description="fMRI brain decoding toolkit.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"brainkit {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def run_options(command: argparse.ArgumentParser, out_help: str) -> None:
        command.add_argument("--out", help=out_help)
        command.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value"
        )
        command.add_argument(
            "--resume", action="store_true", help="continue the interrupted run whose folder is --out"
        )
        command.add_argument(
            "--allow-changes", default="", metavar="KEYS",
            help="with --resume: continue with these changed settings (comma-separated, e.g. training.lr,epochs); "
            "recorded in the run's config_changes.jsonl",
        )  # fmt: skip

    recipe = sub.add_parser("run", help="run a method's recipe (train, evaluate, report) into a run folder")
    recipe.add_argument("recipe", help="recipe name (see brainkit list)")
    which = recipe.add_mutually_exclusive_group()
    which.add_argument("--preset", help="recipe preset (default: cpu_small)")
    which.add_argument(
        "--config", help="a YAML/JSON config file (e.g. a run's config.json) instead of a preset"
    )
    run_options(recipe, "run folder (default: runs/<recipe>-<time>)")
    recipe.set_defaults(func=_cmd_run)

    demo = sub.add_parser(
        "demo", help="brainkit run lite_mind --preset demo: Lite-Mind, ridge and an MLP on the built-in data"
    )
    run_options(demo, "run folder (default: runs/demo-<time>)")
    demo.add_argument(
        "--cache-dir", help="embedding/dataset cache (default: $BRAINKIT_CACHE or ~/.cache/brainkit)"
    )
    demo.set_defaults(func=_cmd_run, recipe="lite_mind", preset="demo", config=None)

    train = sub.add_parser("train", help="brainkit run lite_mind from a YAML/JSON config or a preset name")
    train.add_argument("source", help="YAML/JSON file or a lite_mind preset (see brainkit list)")
    run_options(train, "run folder (default: runs/lite_mind-<time>)")
    train.set_defaults(func=_cmd_train)

    evaluate = sub.add_parser("eval", help="re-evaluate a finished run folder")
    evaluate.add_argument("run", help="a run folder written by brainkit run (or train, demo)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON instead of tables")
    evaluate.add_argument(
        "--report", default=None, metavar="FILE",
        help="write the metrics as an HTML report here (default: RUN/eval_report.html; --report '' for none)",
    )  # fmt: skip
    evaluate.set_defaults(func=_cmd_eval)

    importing = sub.add_parser(
        "import-weights", help="a run folder from a method's released checkpoint (.pth/.ckpt), then evaluated"
    )
    importing.add_argument("method", help="recipe name (the recipes with an importer: see brainkit list)")
    importing.add_argument(
        "path", help="the released checkpoint; read with torch.load(weights_only=True) only"
    )
    importing.add_argument("--out", required=True, help="the run folder to write")
    source = importing.add_mutually_exclusive_group()
    source.add_argument("--preset", help="the recipe preset with the checkpoint's sizes (usually paper)")
    source.add_argument("--config", help="a YAML/JSON config file instead of a preset")
    importing.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value"
    )
    importing.set_defaults(func=_cmd_import)

    predicting = sub.add_parser("predict", help="decode new recordings with a finished run")
    predicting.add_argument("run", help="a run folder written by brainkit run (a recipe that can predict)")
    predicting.add_argument(
        "--input",
        required=True,
        nargs="+",
        help="brain data: .npy (n, voxels; a sim run: (n_frames, n_vertices)), NIfTI, CIFTI, or GIFTI (two files: "
        "left, right hemisphere); brain_mae runs: one subject's ROI time series (.tsv/.csv with ROI names, or .npy "
        "(n_frames, n_rois))",
    )
    predicting.add_argument("--out", required=True, help="where to write the decoded embeddings (.npy)")
    predicting.add_argument("--subject", help="the input's subject (checked against the run's)")
    predicting.add_argument("--space", help="the input's space (checked against the run's)")
    predicting.add_argument(
        "--decoder", help="which decoder of the run (default: its main model; a sim run: scratch or vsmae)"
    )
    predicting.add_argument("--mask", help="a NIfTI brain mask for NIfTI input (default: the run's own)")
    predicting.add_argument(
        "--gallery",
        help="a folder of images to rank for each sample (a sim run: 'test', its own test clips); writes OUT.json/.html",
    )
    predicting.add_argument("--k", type=int, default=5, help="gallery images per sample (default 5)")
    predicting.set_defaults(func=_cmd_predict)

    metrics = sub.add_parser(
        "metrics", help="reconstruction metrics of a folder of real / reconstructed images"
    )
    metrics.add_argument(
        "folder", help="FOLDER/real/NAME.png + FOLDER/recon/NAME[_k].png, or strips [real|recon...]"
    )
    metrics.add_argument("--out", help="also write the numbers to this JSON file")
    metrics.add_argument(
        "--trials", type=int, default=1000, help="distractor draws per number (default 1000)"
    )
    metrics.add_argument("--seed", type=int, default=0, help="seed of the distractor draws (default 0)")
    metrics.add_argument(
        "--n-way",
        type=_integers,
        help="identification sizes, e.g. 2,50 (default: 2,50 where there are enough pairs)",
    )
    metrics.add_argument("--image-size", type=int, help="resize every image to this square size first")
    metrics.add_argument(
        "--pixels",
        choices=("reference", "vis_dec"),
        default="reference",
        help="PixCorr/SSIM protocol: reference (MindEye's: gray, Gaussian SSIM at 425 px; default) or vis_dec",
    )
    metrics.add_argument(
        "--clip-model-dir", help="a local openai/clip-vit-large-patch14 folder: adds CLIP features"
    )
    metrics.add_argument(
        "--reference-weights",
        metavar="FOLDER",
        help="a folder with MindEye's evaluation weights under their released names (alexnet-owt-7be5be79.pth, "
        "inception_v3_google-0cc3c7bd.pth, efficientnet_b1-c27df63c.pth, swav_800ep_pretrain.pth.tar; any of "
        "them, e.g. ~/.cache/torch/hub/checkpoints): adds the literature's AlexNet(2), AlexNet(5), Inception, "
        "EffNet-B, SwAV columns",
    )
    metrics.set_defaults(func=_cmd_metrics)

    bench = sub.add_parser(
        "bench",
        help="every method and baseline on the built-in data (or --dataset), seeds, intervals, one table",
    )
    bench.add_argument("--preset", default="cpu_small", help="testing, cpu_small (default) or full")
    bench.add_argument(
        "--out", help="the benchmark folder (default: runs/bench-<time>); again: reuses finished runs"
    )
    bench.add_argument("--seeds", help="comma-separated seeds (default: the preset's, 0,1,2)")
    bench.add_argument(
        "--only", default="", help="comma-separated recipes of the preset to run (default: all)"
    )
    bench.add_argument(
        "--dataset", help="run on this registered dataset instead (e.g. nsd; options with --set)"
    )
    bench.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override every run's config (data.options.root=DIR, data.subject=S with --dataset; training.epochs=2)",
    )  # fmt: skip
    bench.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    bench.add_argument("--threads", type=int, help="torch threads per run (default: the CPUs / jobs)")
    bench.set_defaults(func=_cmd_bench)

    listing = sub.add_parser("list", help="list datasets, encoders, models, objectives and presets")
    listing.set_defaults(func=_cmd_list)
    return parser


def _version() -> str:
    from brainkit import __version__

    return __version__


def _unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """A "did you mean" message when the first word is not a command (argparse only lists the choices)."""
    import difflib

    words = [a for a in argv if not a.startswith("-")]
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if not words or words[0] in commands:
        return None
    close = difflib.get_close_matches(words[0], list(commands), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"error: unknown command {words[0]!r}.{hint} Commands: {', '.join(commands)}."


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    message = _unknown_command(parser, argv)
    if message:
        print(message, file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except BrainkitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
