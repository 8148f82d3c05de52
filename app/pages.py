"""HTML pages, rendered with Jinja2: home, run overview, layer view, architecture, errors.

The pages carry only identifiers and server-side facts (a model's table of layers); the
numbers of a run are fetched by the browser from the JSON API. Text is English in the HTML
and marked with ``data-i18n`` keys that ``static/js/i18n.js`` translates.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.config import get_settings
from app.deps import RegistryDep, RunsDep
from app.runs import RunNotFound

__all__ = ["router", "templates", "architecture_table", "weight_formula", "not_found_page"]

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = Jinja2Templates(directory=str(get_settings().templates_dir))


# --- formatting of the architecture table ---------------------------------------------


def _int(n: int) -> str:
    return f"{n:,}"


def _pair(v: Any) -> str:
    """[3, 3] -> "3 × 3"; [2, 2] stride -> "2"; 1 -> "1"."""
    if isinstance(v, list | tuple):
        return str(v[0]) if len(set(v)) == 1 else " × ".join(str(x) for x in v)
    return str(v)


def _human(n: float) -> str:
    """173408256 -> "173.4 M" (FLOPs are read as orders of magnitude)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(int(n))


def shape_hwc(shape: list[int]) -> str:
    """(C, H, W) -> "H × W × C", the order textbooks use; vectors stay as their length."""
    if len(shape) == 3:
        c, h, w = shape
        return f"{h} × {w} × {c}"
    return " × ".join(_int(s) for s in shape)


def weight_formula(row: dict[str, Any]) -> str | None:
    """The weight count as a student writes it: "3 x 3 x 64 x 128 = 73,728 + 128".

    Conv weights (C_out, C_in, kH, kW) are written kH x kW x C_in x C_out; linear weights
    (out, in) as in x out; the biases follow the "+".
    """
    shapes = row.get("param_shapes") or {}
    weight = shapes.get("weight")
    if not weight:
        return None
    if row["kind"] == "conv2d" and len(weight) == 4:
        c_out, c_in, kh, kw = weight
        factors = [kh, kw, c_in, c_out]
    elif len(weight) == 2:
        out_features, in_features = weight
        factors = [in_features, out_features]
    else:
        factors = list(weight)
    text = " x ".join(_int(f) for f in factors) + f" = {_int(math.prod(factors))}"
    bias = shapes.get("bias")
    if bias:
        text += f" + {_int(math.prod(bias))}"
    return text


def _hyper(row: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """(i18n key, variables, English text) describing a layer's hyper-parameters."""
    kind, hp = row["kind"], row["hyperparameters"]
    if kind == "conv2d":
        k = hp["kernel"]
        v = {
            "n": hp["out_channels"],
            "k": f"{k[0]}×{k[1]}×{hp['in_channels']}",
            "s": _pair(hp["stride"]),
            "p": _pair(hp["padding"]),
            "d": _pair(hp.get("dilation", 1)),
        }
        key = "arch.hp_conv" if v["d"] == "1" else "arch.hp_conv_dilated"
        en = f"{v['n']} kernels {v['k']}, stride {v['s']}, padding {v['p']}"
        if v["d"] != "1":
            en += f", dilation {v['d']}"
        return key, v, en
    if kind in ("maxpool2d", "avgpool2d"):
        k = hp["kernel"]
        v = {"k": f"{k[0]}×{k[1]}", "s": _pair(hp["stride"]), "p": _pair(hp.get("padding", 0))}
        if v["p"] != "0":
            return "arch.hp_pool_padded", v, f"window {v['k']}, stride {v['s']}, padding {v['p']}"
        return "arch.hp_pool", v, f"window {v['k']}, stride {v['s']}"
    if kind == "linear":
        v = {"i": _int(hp["in_features"]), "o": _int(hp["out_features"])}
        return "arch.hp_linear", v, f"{v['i']} inputs → {v['o']} neurons"
    if kind == "flatten":
        v = {"from": shape_hwc(row["input_shape"]), "n": _int(math.prod(row["output_shape"]))}
        return "arch.hp_flatten", v, f"{v['from']} → {v['n']} values"
    formulas = {
        "relu": "max(0, x)",
        "leaky_relu": f"max({hp.get('slope', 0.01)}·x, x)",
        "sigmoid": "1 / (1 + e^(−x))",
        "tanh": "tanh(x)",
        "softmax": "e^(x_i) / Σ_j e^(x_j)",
    }
    text = formulas.get(kind, ", ".join(f"{k}={v}" for k, v in hp.items()))
    return "", {}, text


def architecture_table(layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows and totals of the architecture page from ``model.describe()``."""
    rows = []
    for d in layers:
        key, hp_vars, hp_text = _hyper(d)
        rf = d["receptive_field"]
        rows.append(
            {
                "index": d["index"],
                "name": d["name"],
                "kind": d["kind"],
                "hp_key": key,
                "hp_vars": hp_vars,
                "hp_text": hp_text,
                "output": shape_hwc(d["output_shape"]),
                "params": d["params"],
                "params_text": _int(d["params"]),
                "formula": weight_formula(d),
                "flops": d["flops"],
                "flops_text": _human(d["flops"]) if d["flops"] else "0",
                "flops_exact": _int(d["flops"]),
                "rf": f"{rf['size'][0]} × {rf['size'][1]}",
                "rf_full": rf["full"],
            }
        )
    params = sum(d["params"] for d in layers)
    weights = sum(
        math.prod(d["param_shapes"]["weight"]) for d in layers if d["param_shapes"].get("weight")
    )
    flops = sum(d["flops"] for d in layers)
    macs = sum(d["macs"] for d in layers)
    totals = {
        "params": params,
        "params_text": _int(params),
        "weights_text": _int(weights),
        "biases_text": _int(params - weights),
        "flops_text": _human(flops),
        "flops_exact": _int(flops),
        "macs_text": _human(macs),
        "layers": len(layers),
    }
    return {"rows": rows, "totals": totals}


# --- pages ------------------------------------------------------------------------------


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, context, status_code=status)


def not_found_page(request: Request, kind: str, ident: str, expired: bool = False) -> HTMLResponse:
    """The HTML 404 for an unknown run or model, with a way back home."""
    return _page(
        request,
        "error.html",
        {"kind": kind, "ident": ident, "expired": expired},
        status=404,
    )


def _columns(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the overview needs of each layer, and where a VGG block starts."""
    columns = []
    previous = None
    for d in layers:
        shape = d["output_shape"]
        starts_block = (d["kind"] == "conv2d" and previous in (None, "maxpool2d", "avgpool2d")) or (
            d["kind"] == "flatten"
        )
        columns.append(
            {
                "name": d["name"],
                "kind": d["kind"],
                "index": d["index"],
                "vector": len(shape) == 1,
                "block_start": starts_block,
                "shape_text": "×".join(str(s) for s in (shape[1:] + shape[:1]))
                if len(shape) == 3
                else f"{shape[0]:,}",
                "output_shape": shape,
                "input_shape": d["input_shape"],
                "hyperparameters": d["hyperparameters"],
            }
        )
        previous = d["kind"]
    return columns


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Choose a model and an image."""
    return _page(request, "home.html", {})


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def overview(request: Request, run_id: str, runs: RunsDep, registry: RegistryDep) -> HTMLResponse:
    """Every layer of one run, left to right."""
    try:
        run = runs.get(run_id)
    except RunNotFound as exc:
        return not_found_page(request, "run", run_id, expired=exc.code == "run_expired")
    detail = registry.detail(run.model_id)
    model = {k: v for k, v in detail.items() if k != "layers"}
    columns = _columns(detail["layers"])
    page_data = {"run_id": run.id, "model": model, "layers": columns}
    return _page(
        request,
        "overview.html",
        {"run_id": run.id, "model": model, "layers": columns, "page_data": page_data},
    )


@router.get("/runs/{run_id}/layers/{layer}", response_class=HTMLResponse)
def layer_view(
    request: Request, run_id: str, layer: str, runs: RunsDep, registry: RegistryDep
) -> HTMLResponse:
    """One layer of one run, animated (templates/layer.html)."""
    try:
        run = runs.get(run_id)
    except RunNotFound as exc:
        return not_found_page(request, "run", run_id, expired=exc.code == "run_expired")
    detail = registry.detail(run.model_id)
    described = {d["name"]: d for d in detail["layers"]}
    if layer not in described:
        return not_found_page(request, "layer", layer)
    model = {k: v for k, v in detail.items() if k != "layers"}
    return _page(
        request,
        "layer.html",
        {
            "run_id": run.id,
            "model_id": run.model_id,
            "model": model,
            "layer": layer,
            "layer_info": described[layer],
        },
    )


@router.get("/models/{model_id}/architecture", response_class=HTMLResponse)
def architecture(request: Request, model_id: str, registry: RegistryDep) -> HTMLResponse:
    """Every layer's shape, weights, FLOPs and receptive field, with totals."""
    if model_id not in registry.ids:
        return not_found_page(request, "model", model_id)
    detail = registry.detail(model_id)
    model = {k: v for k, v in detail.items() if k != "layers"}
    return _page(
        request,
        "architecture.html",
        {"model": model, "table": architecture_table(detail["layers"])},
    )
