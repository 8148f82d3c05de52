"""Built-in architectures, and the trained weights that ship beside them.

``load(name)`` returns the trained model when ``NAME.json``/``NAME.npz`` are in this
folder, and otherwise the architecture with seeded He-initialised weights, marked
untrained in its metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ..data import CIFAR10_CLASSES
from ..layers import Conv2d, Flatten, Layer, Linear, MaxPool2d, ReLU, Softmax
from ..model import InputSpec, Sequential

__all__ = ["MODEL_NAMES", "ZOO_DIR", "architecture", "build", "load", "vgg_stack", "weights_path"]

ZOO_DIR = Path(__file__).resolve().parent
CIFAR10_MEAN = [0.4914, 0.4822, 0.4465]
CIFAR10_STD = [0.2470, 0.2435, 0.2616]
MNIST_MEAN = [0.1307]
MNIST_STD = [0.3081]
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def vgg_stack(
    in_channels: int,
    blocks: Sequence[Sequence[int]],
    in_size: int,
    fc: Sequence[int],
    classes: int,
) -> list[Layer]:
    """VGG's recipe: blocks of 3x3 same-padded convolutions with ReLU, each block ended by
    a 2x2 max-pool; then flatten, fully connected layers with ReLU, and a softmax.
    Names follow VGG: conv{block}_{i}, relu{block}_{i}, pool{block}, fc{k}, relu_fc{k}."""
    layers: list[Layer] = []
    channels, size = in_channels, in_size
    for b, widths in enumerate(blocks, start=1):
        for i, width in enumerate(widths, start=1):
            layers += [Conv2d(f"conv{b}_{i}", channels, width, 3, 1, 1), ReLU(f"relu{b}_{i}")]
            channels = width
        layers.append(MaxPool2d(f"pool{b}", 2, 2))
        size //= 2
    layers.append(Flatten("flatten"))
    features = channels * size * size
    widths = [*fc, classes]
    for k, width in enumerate(widths, start=1):
        layers.append(Linear(f"fc{k}", features, width))
        if k < len(widths):
            layers.append(ReLU(f"relu_fc{k}"))
        features = width
    layers.append(Softmax("softmax"))
    return layers


def tiny_vgg() -> Sequential:
    layers = vgg_stack(3, [[32, 32], [64, 64], [64, 64]], 32, [256], 10)
    return Sequential(
        layers,
        InputSpec(3, 32, 32, CIFAR10_MEAN, CIFAR10_STD),
        "tiny-vgg",
        CIFAR10_CLASSES,
        {
            "title": "Tiny VGG (CIFAR-10)",
            "dataset": "cifar10",
            "preprocess": "photo",
            "description": (
                "A small VGG-style network for 32x32 colour photos: three blocks of two 3x3 "
                "convolutions with ReLU and a 2x2 max-pool, then two fully connected layers."
            ),
        },
    )


def lenet5() -> Sequential:
    layers: list[Layer] = [
        Conv2d("conv1", 1, 6, 5),
        ReLU("relu1"),
        MaxPool2d("pool1", 2, 2),
        Conv2d("conv2", 6, 16, 5),
        ReLU("relu2"),
        MaxPool2d("pool2", 2, 2),
        Flatten("flatten"),
        Linear("fc1", 400, 120),
        ReLU("relu_fc1"),
        Linear("fc2", 120, 84),
        ReLU("relu_fc2"),
        Linear("fc3", 84, 10),
        Softmax("softmax"),
    ]
    return Sequential(
        layers,
        InputSpec(1, 32, 32, MNIST_MEAN, MNIST_STD),
        "lenet5",
        [str(d) for d in range(10)],
        {
            "title": "LeNet-5 (MNIST digits)",
            "dataset": "mnist",
            "preprocess": "digit",
            "description": "LeCun's LeNet-5 for handwritten digits, with ReLU and max-pooling: "
            "C1 6@5x5, S2, C3 16@5x5, S4, C5 120, F6 84, output 10.",
        },
    )


def vgg16() -> Sequential:
    layers = vgg_stack(
        3, [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3], 224, [4096, 4096], 1000
    )
    classes_file = ZOO_DIR / "imagenet_classes.txt"
    classes = (
        classes_file.read_text().split("\n")[:1000]
        if classes_file.exists()
        else [str(i) for i in range(1000)]
    )
    return Sequential(
        layers,
        InputSpec(3, 224, 224, IMAGENET_MEAN, IMAGENET_STD),
        "vgg16",
        classes,
        {
            "title": "VGG-16 (untrained)",
            "dataset": "imagenet",
            "preprocess": "photo",
            "description": (
                "Simonyan and Zisserman's VGG-16 (configuration D) with seeded random weights: "
                "the shapes and weight counts of the real network, but its predictions mean "
                "nothing until real weights are imported."
            ),
        },
    )


_BUILDERS: dict[str, Callable[[], Sequential]] = {
    "tiny-vgg": tiny_vgg,
    "lenet5": lenet5,
    "vgg16": vgg16,
}
MODEL_NAMES = tuple(_BUILDERS)


def architecture(name: str) -> Sequential:
    """The architecture and its descriptive metadata, with zero weights: cheap even for
    VGG-16 (no random draws), for shapes, parameter counts and describe()."""
    if name not in _BUILDERS:
        raise KeyError(f"unknown model {name!r}; built-in models: {', '.join(MODEL_NAMES)}")
    model = _BUILDERS[name]()
    model.meta["trained"] = weights_path(name).exists()
    return model


def build(name: str, seed: int = 0) -> Sequential:
    """The architecture with seeded He initialisation (untrained)."""
    model = architecture(name).init(seed)
    model.meta.update(trained=False, init_seed=seed)
    return model


def weights_path(name: str) -> Path:
    return ZOO_DIR / f"{name}.npz"


def load(name: str, seed: int = 0) -> Sequential:
    """The built-in model: trained weights when they ship, else seeded untrained ones."""
    model = build(name, seed)
    if weights_path(name).exists():
        trained = Sequential.load(ZOO_DIR / name)
        if trained.architecture()["layers"] != model.architecture()["layers"]:
            raise ValueError(
                f"{ZOO_DIR / name}.json does not match the built-in {name} architecture"
            )
        # The builder's descriptive metadata is the default; the training record overrides it.
        trained.meta = {**model.meta, "trained": True, **trained.meta}
        trained.meta.pop("init_seed", None)
        return trained
    return model
