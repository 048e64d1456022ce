"""``visionzoo``: the command line. Entry points only; every command calls into the library.

Errors caused by the user (bad recipe key, corrupt file, unknown method) print as one line; pass
``--debug`` for the traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from visionzoo.core.errors import ConfigError, VisionZooError


def _console():
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped output (logs, tests): don't wrap tables at 80 columns
        console = Console(width=160)
    return console


# ------------------------------------------------------------------------------------------------ list
def cmd_list(args) -> None:
    from rich.table import Table

    from visionzoo.core.catalog import CATALOG
    from visionzoo.core.registry import list_methods, list_models

    console = _console()
    if args.models:
        for name in list_models(args.pattern or "*"):
            console.print(name)
        return
    if args.synth:
        from visionzoo.data.synth import list_synth

        for name, help in list_synth().items():
            console.print(f"[bold]{name}[/]  {help}")
        return
    registered = {m.name: m for m in list_methods()}
    table = Table(title="visionzoo methods")
    for col in ("method", "area", "paper", "status", "recipes"):
        table.add_column(col)
    for entry in CATALOG:
        spec = registered.get(entry.name)
        status = spec.status if spec else "planned"
        colour = {"planned": "dim", "implemented": "yellow"}.get(status, "green")
        table.add_row(entry.name, entry.area, f"{entry.title} ({entry.venue})", f"[{colour}]{status}[/]",
                      ", ".join(spec.recipes()) if spec else "")
    catalogued = {entry.name for entry in CATALOG}
    for spec in registered.values():  # shared base methods the papers build on (MAE, CLIP)
        if spec.name not in catalogued:
            table.add_row(spec.name, spec.area, f"{spec.paper} [dim](base)[/]", f"[green]{spec.status}[/]",
                          ", ".join(spec.recipes()))
    console.print(table)


# ------------------------------------------------------------------------------------------------ train / eval
def _train_overrides(args) -> list[str]:
    out = list(args.overrides)
    for flag, key in (("seed", "train.seed"), ("device", "train.accelerator"), ("precision", "train.precision"),
                      ("devices", "train.devices"), ("num_nodes", "train.num_nodes"), ("strategy", "train.strategy"),
                      ("max_steps", "train.max_steps"), ("max_epochs", "train.max_epochs")):
        value = getattr(args, flag, None)
        if value is not None:
            out.append(f"{key}={value}" if flag != "devices" else f"{key}='{value}'")
    return out


def _ensure_data(cfg, console) -> None:
    """Write the recipe's synthetic dataset when its root is missing and the recipe names a generator."""
    data = getattr(cfg, "data", None)
    root, synth = getattr(data, "root", None), getattr(data, "synth", "")
    if root and synth and not Path(root).exists():
        from visionzoo.data.synth import get_synth

        console.print(f"[dim]data root {root} missing: writing synthetic '{synth}' data there[/]")
        get_synth(synth)(root)


def cmd_train(args) -> None:
    from visionzoo.core.registry import load_recipe
    from visionzoo.engine.trainer import default_run_dir, fit

    spec, cfg, recipe = load_recipe(args.recipe, _train_overrides(args))
    console = _console()
    _ensure_data(cfg, console)
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(spec, recipe)
    result = fit(spec, cfg, run_dir, resume=args.resume, recipe_name=recipe)
    if result.metrics:
        _print_metrics(result.metrics, f"{spec.name}/{recipe}")
    console.print(f"run folder: [bold]{result.run_dir}[/] (report.md, curves.png, model/, checkpoints/last.ckpt)")


def _print_metrics(metrics: dict, title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.2f}" if isinstance(v, float) else str(v))
    _console().print(table)


def cmd_eval(args) -> None:
    import json

    from visionzoo.core.config import load_config, read_yaml
    from visionzoo.core.hub import WEIGHTS_NAME, load_safetensors, load_state_dict_strict
    from visionzoo.core.io import atomic_write
    from visionzoo.core.registry import get_method

    run = Path(args.run)
    config_path = run / "config.yaml"
    data = read_yaml(config_path)
    spec = get_method(str(data.pop("method", "")))
    cfg = load_config(spec.config_cls, config_path, args.overrides, data=data)
    if spec.evaluate is None:
        raise VisionZooError(f"method {spec.name!r} has no evaluation hook")
    task = spec.build_task(cfg)
    weights = run / "model" / WEIGHTS_NAME
    load_state_dict_strict(task.export_model(), load_safetensors(weights), str(weights))
    metrics = spec.evaluate(task, spec.build_data(cfg), cfg)
    with atomic_write(run / "eval.json") as tmp:
        tmp.write_text(json.dumps(metrics, indent=2))
    _print_metrics(metrics, f"{spec.name} eval of {run}")


def cmd_predict(args, extra: list[str]) -> None:
    from visionzoo.core.registry import get_method

    spec = get_method(args.method)
    if spec.predict is None:
        raise VisionZooError(f"method {spec.name!r} has no predict command yet")
    parser = argparse.ArgumentParser(prog=f"visionzoo predict {spec.name}")
    add_args = spec.extra.get("predict_args")
    if add_args:
        add_args(parser)
    spec.predict(parser.parse_args(extra))


# ------------------------------------------------------------------------------------------------ data, bench, keypoints
def _kwargs(pairs: list[str]) -> dict:
    from visionzoo.core.config import parse_override

    out = {}
    for text in pairs:
        path, value = parse_override(text)
        out[".".join(path).replace("-", "_")] = value
    return out


def cmd_data_synth(args) -> None:
    import inspect

    from visionzoo.data.synth import get_synth

    fn = get_synth(args.name)
    kwargs = _kwargs(args.options)
    if args.seed is not None:
        kwargs["seed"] = args.seed
    params = inspect.signature(fn).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise ConfigError(f"data synth {args.name}: unknown option {unknown[0]!r}; options: "
                          f"{', '.join(p for p in params if p != 'out')}")
    summary = fn(args.out, **kwargs)
    _console().print(summary)


def cmd_data_check(args) -> None:
    """Read a dataset split with the real reader: a one-line error on the first problem, or with
    --skip-bad every problem counted and listed."""
    from visionzoo.data.sign.datasets import read_sign_dataset

    console = _console()
    for split in args.split:
        index = read_sign_dataset(args.name, args.root, split, skip_bad=args.skip_bad, media=args.media)
        console.print(f"[bold]{args.name}/{split}[/]: {len(index.samples)} samples read; {index.skipped.summary()}")
        for entry in index.skipped.entries[: args.show]:
            console.print(f"  [yellow]{entry.kind}[/] {entry.message}")


def benchmarks_dir() -> Path:
    here = Path.cwd() / "benchmarks"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "benchmarks"


def cmd_bench(args) -> None:
    from visionzoo.core.bench import format_table, write_results

    folder = benchmarks_dir()
    names = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    chosen = names if args.name == "all" else [args.name]
    for name in chosen:
        path = folder / f"{name}.py"
        if not path.is_file():
            raise VisionZooError(f"unknown benchmark {name!r}; available in {folder}: {', '.join(names)}")
        spec = importlib.util.spec_from_file_location(f"visionzoo_bench_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        results = module.run(quick=args.quick)
        out = write_results(results, args.out, name)
        _console().print(f"[bold]{name}[/] -> {out}")
        print(format_table(results))


def cmd_keypoints_extract(args) -> None:
    from rich.progress import Progress

    from visionzoo.data.keypoints import extract_to_file

    with Progress() as progress:
        bar = progress.add_task("extracting keypoints", total=None)

        def update(done, total, source):
            progress.update(bar, completed=done, total=total, description=f"{Path(source).name}")

        written = extract_to_file(args.src, args.out, static_image_mode=args.static, min_confidence=args.min_confidence,
                                  skip_existing=args.skip_existing, progress=update)
    _console().print(f"wrote {len(written)} keypoint file(s) under {args.out}")


def cmd_convert(args, extra: list[str]) -> None:
    from visionzoo.core.registry import get_method

    spec = get_method(args.method)
    if "convert" not in spec.extra:
        raise VisionZooError(f"method {spec.name!r} has no checkpoint converter yet")
    parser = argparse.ArgumentParser(prog=f"visionzoo convert {spec.name}")
    spec.extra["convert_args"](parser)
    spec.extra["convert"](parser.parse_args(extra))


# ------------------------------------------------------------------------------------------------ demo
def cmd_demo(args) -> None:
    from visionzoo.core.registry import get_method

    spec = get_method(args.method)
    demo = spec.extra.get("demo")
    if demo is None:
        raise VisionZooError(f"method {spec.name!r} has no demo yet")
    demo(args)


# ------------------------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="visionzoo", description="Twenty vision research methods on one core.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("list", help="methods with their status, registered models, synthetic datasets")
    s.add_argument("--models", action="store_true", help="list registered model names")
    s.add_argument("--synth", action="store_true", help="list synthetic dataset generators")
    s.add_argument("pattern", nargs="?", help="glob filter for --models")
    s.set_defaults(fn=cmd_list)

    s = sub.add_parser("train", help="train a recipe: METHOD[/RECIPE] or path/to/recipe.yaml",
                       description="Train a recipe. Overrides are key=value pairs, e.g. train.max_epochs=5 "
                                   "optim.lr=0.01 model.widths=[1.0,0.5].")
    s.add_argument("recipe", help="e.g. slimclr/tiny, slimclr/paper or a YAML file")
    s.add_argument("overrides", nargs="*", help="key=value recipe overrides")
    s.add_argument("--run-dir", help="output folder (default runs/<method>-<recipe>-<time>)")
    s.add_argument("--resume", help="a checkpoint (e.g. RUN/checkpoints/last.ckpt) to resume exactly from")
    s.add_argument("--seed", type=int)
    s.add_argument("--device", choices=["cpu", "gpu", "cuda", "mps", "auto"], help="accelerator")
    s.add_argument("--precision", help="32-true, bf16-mixed, 16-mixed, ...")
    s.add_argument("--devices", help="number of devices or a list like 0,1")
    s.add_argument("--num-nodes", type=int, dest="num_nodes")
    s.add_argument("--strategy", help="auto, ddp, ddp_spawn, fsdp, ...")
    s.add_argument("--max-steps", type=int, dest="max_steps")
    s.add_argument("--max-epochs", type=int, dest="max_epochs")
    s.set_defaults(fn=cmd_train)

    s = sub.add_parser("eval", help="evaluate a finished run folder (writes RUN/eval.json)")
    s.add_argument("run", help="a run folder written by `visionzoo train`")
    s.add_argument("overrides", nargs="*", help="key=value overrides of the run's config (e.g. data.root=...)")
    s.set_defaults(fn=cmd_eval)

    s = sub.add_parser("eval-predictions", help="score a predictions file (WER, BLEU/ROUGE-L, top-k, retrieval R@K)",
                       description="Score a method's predictions file against references with the papers' "
                                   "metrics; formats are documented in visionzoo.metrics.predictions.")
    from visionzoo.metrics.predictions import add_eval_predictions_args, run_eval_predictions

    add_eval_predictions_args(s)
    s.set_defaults(fn=run_eval_predictions)

    s = sub.add_parser("predict", help="run a trained model on your inputs: visionzoo predict METHOD --help",
                       add_help=False)
    s.add_argument("method")
    s.set_defaults(fn=cmd_predict, passthrough=True)

    s = sub.add_parser("convert", help="official checkpoint -> our pretrained folder: visionzoo convert METHOD --help",
                       add_help=False)
    s.add_argument("method")
    s.set_defaults(fn=cmd_convert, passthrough=True)

    s = sub.add_parser("data", help="datasets: `data synth NAME DIR` writes a synthetic dataset in a real layout")
    dsub = s.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    d = dsub.add_parser("synth", help="write a synthetic dataset (see `visionzoo list --synth`)")
    d.add_argument("name")
    d.add_argument("out")
    d.add_argument("options", nargs="*", help="generator options as key=value (e.g. size=32)")
    d.add_argument("--seed", type=int)
    d.set_defaults(fn=cmd_data_synth)

    d = dsub.add_parser("check", help="validate a real dataset split with its reader (sign datasets)")
    d.add_argument("name", help="phoenix2014, phoenix2014t, csl-daily, wlasl, msasl, how2sign")
    d.add_argument("root")
    d.add_argument("--split", nargs="+", default=["train", "dev", "test"])
    d.add_argument("--skip-bad", action="store_true", dest="skip_bad",
                   help="count and list bad entries instead of stopping at the first")
    d.add_argument("--media", choices=["exists", "count", "ignore"], default="count",
                   help="check media files exist, also count their frames, or skip media checks")
    d.add_argument("--show", type=int, default=20, help="how many skipped entries to list")
    d.set_defaults(fn=cmd_data_check)

    s = sub.add_parser("bench", help="run a side-by-side benchmark against the peer library (or 'all')")
    s.add_argument("name")
    s.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    s.add_argument("--out", default="benchmarks/results")
    s.set_defaults(fn=cmd_bench)

    s = sub.add_parser("keypoints", help="keypoint tools: `keypoints extract VIDEO_OR_DIR OUT`")
    ksub = s.add_subparsers(dest="kp_command", required=True, metavar="SUBCOMMAND")
    k = ksub.add_parser("extract", help="MediaPipe Holistic keypoints -> .npz (COCO-WholeBody-133 + holistic)")
    k.add_argument("src", help="a video, an image, a frame folder, or a folder of those")
    k.add_argument("out", help="an .npz path (single source) or an output folder")
    k.add_argument("--static", action="store_true", help="treat frames as independent images (no tracking)")
    k.add_argument("--min-confidence", type=float, default=0.5, dest="min_confidence")
    k.add_argument("--skip-existing", action="store_true", dest="skip_existing")
    k.set_defaults(fn=cmd_keypoints_extract)

    s = sub.add_parser("demo", help="end-to-end demo of a method on its embedded data (synth -> train -> eval)")
    s.add_argument("method", nargs="?", default="slimclr")
    s.add_argument("--out", default="runs/demo", help="demo run folder")
    s.add_argument("--data", default="data/digits", help="where the demo data is written")
    s.set_defaults(fn=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    debug = args.debug
    try:
        if getattr(args, "passthrough", False):
            args.fn(args, extra)
        else:
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            args.fn(args)
    except VisionZooError as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
