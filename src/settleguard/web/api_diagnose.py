"""``POST /api/v1/diagnose`` and ``POST /api/v1/diagnose/batch``: the failure classifier
(settleguard.diagnosis, docs/diagnosis.md) — the same answers as ``settleguard diagnose --json``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, model_validator

from settleguard.access.model import Action, Principal
from settleguard.diagnosis import SCHEMES, UnknownScheme, classify
from settleguard.web.auth import require
from settleguard.web.context import API
from settleguard.web.errors import ApiError, responses

router = APIRouter(prefix=f"{API}/diagnose", tags=["diagnose 诊断"])
MAX_BATCH = 1000
Text = Annotated[str | None, Field(default=None, max_length=2000)]


class Failure(BaseModel):
    scheme: str | None = Field(default=None, max_length=32, description="代码体系 code set: " + ", ".join(SCHEMES))
    code: Text = None
    message: Text = None

    @model_validator(mode="after")
    def _code_or_message(self) -> Failure:
        if self.code is None and self.message is None:
            raise ValueError("give code or message 请给出 code 或 message")
        return self


class DiagnoseRequest(Failure):
    lang: Literal["zh", "en"] = "zh"
    explain: bool = False


class BatchItem(Failure):
    id: str | int | None = Field(default=None, description="调用方的编号，原样返回 the caller's id, echoed")


class BatchRequest(BaseModel):
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)
    lang: Literal["zh", "en"] = "zh"
    explain: bool = False


def _unknown_scheme(exc: UnknownScheme) -> ApiError:
    return ApiError(422, "unknown_scheme", "未知的代码体系", "unknown scheme", details=str(exc))


@router.post("", responses=responses(401, 403, 422))
def diagnose(body: DiagnoseRequest,
             principal: Annotated[Principal, Depends(require(Action.DIAGNOSE))]) -> dict[str, Any]:
    """诊断一条失败：分类、是否重试、谁来处理、怎么做 Diagnose one failure: category, decision, owner, steps."""
    try:
        d = classify(body.scheme, body.code, body.message)
    except UnknownScheme as exc:
        raise _unknown_scheme(exc) from None
    return {"scheme": body.scheme, "code": body.code, "message": body.message, **d.to_dict(body.lang, body.explain)}


@router.post("/batch", responses=responses(401, 403, 422))
def diagnose_batch(body: BatchRequest,
                   principal: Annotated[Principal, Depends(require(Action.DIAGNOSE))]) -> dict[str, Any]:
    """批量诊断（最多 1000 条，按顺序返回）Diagnose up to 1,000 failures, answered in order; an item with an
    unknown scheme gets an ``error`` instead of a diagnosis."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(body.items):
        head: dict[str, Any] = {"index": i, "id": item.id}
        try:
            d = classify(item.scheme, item.code, item.message)
        except UnknownScheme as exc:
            err = _unknown_scheme(exc)
            out.append({**head, "error": {"code": err.code, "message_zh": err.zh, "message_en": err.en,
                                          "details": err.details}})
            continue
        out.append({**head, **d.to_dict(body.lang, body.explain)})
    return {"items": out, "total": len(out)}
