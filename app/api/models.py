"""/models: the architectures, their weights, and running an image through them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..deps import RegistryDep, SettingsDep
from ..errors import ERROR_RESPONSES, ApiError
from ..schemas import Activations, LayerWeights, ModelDetail, ModelList, RunSummary
from ..serialize import Encoding, OrjsonResponse, dumps
from .common import IMAGE_BODY, check_size, layer_tensor, run_from_request, tensor_payload

__all__ = ["router"]

router = APIRouter(prefix="/models", tags=["models"], responses=ERROR_RESPONSES)

_IMAGE_ERRORS = {
    413: {"description": "Upload or image too large"},
    415: {"description": "Not an image, or an unsupported body type"},
    503: {"description": "Worker queue full; retry after Retry-After seconds"},
}


@router.get("", response_model=ModelList)
def list_models(registry: RegistryDep) -> Response:
    """Every model this server offers, with its input, classes and size."""
    return OrjsonResponse({"models": [registry.summary(m) for m in registry.ids]})


@router.get("/{model_id}", response_model=ModelDetail)
def get_model(model_id: str, registry: RegistryDep) -> Response:
    """A model with every layer's kind, hyper-parameters, shapes, cost and receptive field."""
    return OrjsonResponse(registry.detail(model_id))


@router.get("/{model_id}/layers/{layer}/weights", response_model=LayerWeights)
def get_weights(
    model_id: str,
    layer: str,
    registry: RegistryDep,
    settings: SettingsDep,
    encoding: Encoding = "json",
    out: Annotated[
        int | None, Query(ge=0, description="Only the weights of this output channel or unit")
    ] = None,
) -> Response:
    """A layer's weight and bias (flat row-major data with its shape)."""
    registry.check(model_id)
    names = [info["name"] for info in registry.detail(model_id)["layers"]]
    if layer not in names:
        raise ApiError(
            404,
            "unknown_layer",
            f"model {model_id!r} has no layer {layer!r}; layers: {', '.join(names)}",
        )
    model = registry.get(model_id)
    item = model.layer(layer)
    if "weight" not in item.params:
        raise ApiError(404, "no_weights", f"layer {layer!r} ({item.kind}) has no weights")
    weight, bias = item.params["weight"], item.params.get("bias")
    if out is not None:
        if out >= weight.shape[0]:
            raise ApiError(
                422,
                "out_of_range",
                f"out={out} is outside 0..{weight.shape[0] - 1} of layer {layer!r}",
            )
        weight = weight[out]
        bias = None if bias is None else bias[out : out + 1]
    check_size(weight.size, encoding, settings.max_json_values, f"the weight of {layer}")
    return OrjsonResponse(
        {
            "model_id": model_id,
            "layer": layer,
            "kind": item.kind,
            "weight": tensor_payload(weight, encoding),
            "bias": None if bias is None else tensor_payload(bias, encoding),
        }
    )


@router.post(
    "/{model_id}/runs",
    response_model=RunSummary,
    status_code=201,
    openapi_extra=IMAGE_BODY,
    responses=_IMAGE_ERRORS,
)
async def create_run(model_id: str, request: Request) -> Response:
    """Run an uploaded image (field `image`) or a sample (field `sample`) and keep the run."""
    run, reused = await run_from_request(request, model_id)
    return OrjsonResponse({**run.summary(), "reused": reused}, status_code=201)


@router.post(
    "/{model_id}/activations",
    response_model=Activations,
    openapi_extra=IMAGE_BODY,
    responses=_IMAGE_ERRORS,
)
async def activations(
    model_id: str,
    request: Request,
    settings: SettingsDep,
    layers: Annotated[
        str | None, Query(description="Comma-separated layer names (default: all)")
    ] = None,
    encoding: Encoding = "json",
) -> Response:
    """The whole forward pass of one image: predictions and every layer's output."""
    run, _ = await run_from_request(request, model_id)
    names = [n.strip() for n in layers.split(",") if n.strip()] if layers else list(run.outputs)
    tensors = [(name, layer_tensor(run, name)) for name in names]
    check_size(
        sum(t.size for _, t in tensors), encoding, settings.max_json_values, "the requested layers"
    )

    def render() -> bytes:
        return dumps(
            {
                "model_id": model_id,
                "run_id": run.id,
                "predictions": run.predictions,
                "layers": [
                    {"name": name, "kind": run.kind(name), **tensor_payload(tensor, encoding)}
                    for name, tensor in tensors
                ],
            }
        )

    # Serialising megabytes of floats must not stall the event loop.
    return Response(await run_in_threadpool(render), media_type="application/json")
