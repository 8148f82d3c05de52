"""``convscope import`` and ``convscope export``: ONNX files in and out of a models directory."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

__all__ = ["add_commands"]


def _models_dir(value: str | None) -> Path:
    chosen = value or os.environ.get("CONVSCOPE_MODELS_DIR")
    if not chosen:
        raise ValueError("no models directory: pass --models-dir DIR or set CONVSCOPE_MODELS_DIR")
    return Path(chosen)


def _find_model(name: str, models_dir: str | None):
    """A built-in model, a saved model (PATH.json), or an imported id of the models directory."""
    from engine import zoo
    from engine.model import Sequential

    if name in zoo.MODEL_NAMES:
        return zoo.load(name)
    if name.endswith(".json") and Path(name).is_file():
        return Sequential.load(name)
    chosen = models_dir or os.environ.get("CONVSCOPE_MODELS_DIR")
    if chosen and (Path(chosen) / f"{name}.json").is_file():
        return Sequential.load(Path(chosen) / name)
    raise KeyError(
        f"no model {name!r}: give a built-in model ({', '.join(zoo.MODEL_NAMES)}), a saved "
        "model's .json file, or the id of a model in --models-dir / CONVSCOPE_MODELS_DIR"
    )


def cmd_import(args: argparse.Namespace) -> int:
    from .imported import check_model_id, import_onnx, parse_classes

    models_dir = _models_dir(args.models_dir)
    check_model_id(args.id)
    target = models_dir / args.id
    if target.with_suffix(".json").exists() and not args.force:
        raise ValueError(f"{target}.json exists; pass --force to replace it")
    classes = None
    if args.classes:
        classes = parse_classes(Path(args.classes).read_text(encoding="utf-8"))
    started = time.perf_counter()
    model = import_onnx(
        args.file,
        args.id,
        classes=classes,
        mean=args.mean,
        std=args.std,
        title=args.title,
        description=args.description,
        dataset=args.dataset,
        preprocess=args.preprocess,
        input_size=args.input_size,
        add_softmax=args.softmax,
    )
    json_path, npz_path = model.save(target, compress=False)  # big weights: fast to load
    seconds = time.perf_counter() - started
    print(model.summary())
    print(model.meta["onnx"]["summary"])
    print(
        f"imported {args.file} as {args.id!r} in {seconds:.1f} s: {len(model.layers)} layers, "
        f"{model.param_count:,} parameters, {len(model.classes)} classes"
    )
    print(f"saved {json_path} and {npz_path}")
    print(f"serve it with: CONVSCOPE_MODELS_DIR={models_dir} convscope serve")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from engine.onnx_io import export_onnx

    model = _find_model(args.model, args.models_dir)
    proto = export_onnx(model, args.file, opset=args.opset)
    size = Path(args.file).stat().st_size
    print(
        f"wrote {args.file}: {len(proto.graph.node)} nodes, opset {args.opset}, {size:,} bytes; "
        f"input 'input' (N, {', '.join(map(str, model.input_spec.shape))}), "
        f"output {proto.graph.output[0].name!r}"
    )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``import`` and ``export`` subcommands to the ``convscope`` parser."""
    imp = sub.add_parser(
        "import",
        help="convert a single-path ONNX CNN into the models directory the server loads",
        description="Convert FILE.onnx into ID.json + ID.npz in the models directory "
        "(--models-dir or CONVSCOPE_MODELS_DIR). See docs/import.md.",
    )
    imp.add_argument("file", help="the .onnx file")
    imp.add_argument("--id", required=True, help="model id: a-z, 0-9, '_', '-'")
    imp.add_argument("--classes", help="text file with one class name per line")
    imp.add_argument("--mean", type=float, nargs="+", help="per-channel mean of [0, 1] pixels")
    imp.add_argument("--std", type=float, nargs="+", help="per-channel std of [0, 1] pixels")
    imp.add_argument("--title", help="the name shown on the pages")
    imp.add_argument("--description")
    imp.add_argument("--dataset", help="imagenet, cifar10, mnist, ... (samples are matched by it)")
    imp.add_argument("--preprocess", choices=["photo", "digit"], default="photo")
    imp.add_argument(
        "--input-size", type=int, nargs=2, metavar=("H", "W"), help="for dynamic image sizes"
    )
    imp.add_argument("--softmax", action="store_true", help="append a softmax after the scores")
    imp.add_argument("--models-dir", help="default: $CONVSCOPE_MODELS_DIR")
    imp.add_argument("--force", action="store_true", help="replace a model with the same id")
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser("export", help="write a model as ONNX (runs in onnxruntime)")
    exp.add_argument("model", help="a built-in model, a saved model's .json, or an imported id")
    exp.add_argument("file", help="the .onnx file to write")
    exp.add_argument("--opset", type=int, default=13, help="ONNX opset, 13 or newer")
    exp.add_argument("--models-dir", help="where imported ids are looked up")
    exp.set_defaults(func=cmd_export)
