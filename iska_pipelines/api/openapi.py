"""The OpenAPI document says what the API really answers: every 422 is ErrorBody
({detail, errors: [{field, reason, message}]}), not FastAPI's default shape, so clients and the
schema-driven tests read the same contract."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from iska_pipelines.api.schemas import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def document_errors(app: FastAPI) -> None:
    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(error_schema.pop("$defs", {}))
        components["ErrorBody"] = error_schema
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if "422" in responses:
                    responses["422"] = {
                        "description": "invalid input, one entry per field",
                        "content": {"application/json": {"schema": ERROR_REF}},
                    }
        for unused in ("HTTPValidationError", "ValidationError"):
            if unused in components and unused not in str(schema["paths"]):
                components.pop(unused)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema
