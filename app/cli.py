"""The ``convscope`` command: serve, train, evaluate, summary, import, export."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from .cli_models import add_commands

__all__ = ["main"]


def _test_path_for(train_path: Path) -> Path | None:
    """The shared datasets pair ``x_train.npz`` with ``x_test.npz``."""
    if train_path.name.endswith("_train.npz"):
        candidate = train_path.with_name(train_path.name.replace("_train.npz", "_test.npz"))
        return candidate if candidate.exists() else None
    return None


def _load_data(path: str, split: str):
    from engine.data import load_dataset

    return load_dataset(Path(path), split)


def cmd_train(args: argparse.Namespace) -> int:
    from engine import zoo
    from engine.train import TrainConfig, evaluate, train

    model = zoo.build(args.model, seed=args.seed)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        warmup_epochs=args.warmup,
        crop_padding=args.crop_padding,
        flip=args.flip,
        seed=args.seed,
    )
    train_data = _load_data(args.data, "train")
    test_path = args.test_data or _test_path_for(Path(args.data))
    test_data = _load_data(str(test_path), "test") if test_path else None
    out = Path(args.out).with_suffix("")
    checkpoint = out.with_name(out.name + ".ckpt.npz")
    history_file = out.with_name(out.name + ".history.json")

    def on_epoch(history) -> None:
        record = {
            "model": args.model,
            "command": " ".join(["convscope", *sys.argv[1:]]),
            "config": asdict(config),
            "history": [asdict(s) for s in history],
        }
        history_file.write_text(json.dumps(record, indent=1))
        from app.plots import training_curve

        training_curve(record["history"], out.with_name(out.name + ".curve.png"))

    print(f"training {args.model}: {len(train_data)} images, {config}", file=sys.stderr)
    history = train(
        model, train_data, config, checkpoint, test_data, resume=args.resume, on_epoch=on_epoch
    )
    # Summed over epochs, so that a resumed run reports its whole training time.
    model.meta.update(
        trained=True,
        train_seconds=round(sum(h.seconds for h in history)),
        train_command=" ".join(["convscope", *(a for a in sys.argv[1:] if a != "--resume")]),
        train_config=asdict(config),
    )
    if test_data is not None:
        result = evaluate(model, test_data)
        model.meta.update(test_accuracy=result["accuracy"], test_count=result["count"])
    json_path, npz_path = model.save(out)
    print(f"saved {json_path} and {npz_path}", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine import zoo
    from engine.model import Sequential
    from engine.train import evaluate

    model = Sequential.load(args.weights) if args.weights else zoo.load(args.model)
    data = _load_data(args.data, "test")
    started = time.perf_counter()
    result = evaluate(model, data)
    result["seconds"] = round(time.perf_counter() - started, 2)
    result["model"] = args.model
    result["data"] = args.data
    result["classes"] = model.classes
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{args.model} on {args.data}: top-1 accuracy {result['accuracy']:.4f} "
            f"({result['count']} images, {result['seconds']} s)"
        )
        for name, acc in zip(model.classes, result["per_class"], strict=False):
            print(f"  {name:>12}  {acc:.4f}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from engine import zoo

    print(zoo.load(args.model).summary())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .config import get_settings

    settings = get_settings()  # a bad CONVSCOPE_* value fails here, before any fork
    if args.workers > 1 and not settings.redis_url:
        raise ValueError(
            f"--workers {args.workers} needs CONVSCOPE_REDIS_URL: processes share runs and "
            "classes only through Redis (docs/deploy.md)"
        )
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        # Classroom states are a few hundred bytes: compressing each one for each student
        # cost the server about a quarter of its CPU per delivery (benchmarks/live.py).
        ws_per_message_deflate=False,
        # A line per request cost 5-10% of the runs per second (docs/BENCHMARKS.md); errors
        # are logged either way, and a reverse proxy keeps its own access log.
        access_log=args.access_log,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convscope", description="See what a CNN does inside.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the web server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes on this machine (more than 1 needs CONVSCOPE_REDIS_URL)",
    )
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="log a line for every request (off by default: it costs throughput)",
    )
    serve.set_defaults(func=cmd_serve)

    train = sub.add_parser("train", help="train a built-in model with the NumPy engine")
    train.add_argument("model")
    train.add_argument("--data", required=True, help=".npz, CIFAR-10 tarball or MNIST idx folder")
    train.add_argument(
        "--test-data", help="evaluated after every epoch (default: the matching _test.npz)"
    )
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--out", required=True, help="where to write MODEL.json and MODEL.npz")
    train.add_argument("--batch-size", type=int, default=128)
    train.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    train.add_argument("--lr", type=float, default=0.03)
    train.add_argument("--momentum", type=float, default=0.9)
    train.add_argument("--weight-decay", type=float, default=5e-4)
    train.add_argument(
        "--warmup", type=float, default=2.0, help="warm-up epochs before cosine decay"
    )
    train.add_argument("--crop-padding", type=int, default=4)
    train.add_argument("--flip", action=argparse.BooleanOptionalAction, default=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", action="store_true", help="continue from OUT.ckpt.npz")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="top-1 accuracy, per class, on a dataset")
    ev.add_argument("model")
    ev.add_argument("--data", required=True)
    ev.add_argument(
        "--weights", help="a saved model (PATH.json + PATH.npz) instead of the built-in one"
    )
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    summary = sub.add_parser("summary", help="print a model's layers, shapes, params and MACs")
    summary.add_argument("model")
    summary.set_defaults(func=cmd_summary)
    add_commands(sub)  # import, export (app/cli_models.py)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"convscope: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
