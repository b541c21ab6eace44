"""`/subscriptions/api/v1/subscriptions/`: subscriptions and their history (SPEC §5, §8).

Every write is an event of SPEC §5 applied by the same code as a CSV row (lib/subscriptions/records.py): create =
addition (201 new; 200 when it renewed or reactivated a known msisdn), moving = update, status
cancelled or DELETE = cancellation with reason `api`. Rows are never deleted.
"""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from iska_pipelines.api.auth import require_access
from iska_pipelines.api.dependencies import database, settings
from iska_pipelines.api.pagination import DEFAULT_LIMIT, Limit, Offset, Page, page
from iska_pipelines.api.schemas import (
    BillingAttempt,
    ConsentRecord,
    ErrorBody,
    SmsMessage,
    Subscription,
    SubscriptionIn,
)
from iska_pipelines.lib.consent.chain import history
from iska_pipelines.lib.errors import FieldError, InvalidRecord
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.subscriptions.events import Outcome
from iska_pipelines.lib.subscriptions.records import (
    EventRules,
    add_subscription,
    cancel_subscription,
    change_subscription,
    get_subscription,
    list_billing_attempts,
    list_sms_messages,
    list_subscriptions,
)
from iska_pipelines.lib.subscriptions.rules import check_subscription
from iska_pipelines.lib.vocabulary import SubscriptionStatus

BASE = "/subscriptions/api/v1/subscriptions/"
IdPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="subscription id")]
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)}

router = APIRouter(tags=["subscriptions"], dependencies=[Depends(require_access)], responses=ERRORS)


def _rules(config: Settings) -> EventRules:
    return EventRules(config.timezone, config.max_grid_distance_km, config.regions())


def _status(body: SubscriptionIn) -> str | None:
    if body.status is None:
        return None
    status = body.status.strip().lower()
    if status not in set(SubscriptionStatus):
        raise InvalidRecord([FieldError("status", "invalid_status", "must be active or cancelled")])
    return status


@router.get(BASE, response_model=Page[Subscription])
def subscriptions(
    request: Request,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    msisdn: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[SubscriptionStatus | None, Query()] = None,
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> dict:
    if msisdn is not None:
        try:  # the same normalisation as stored numbers: "+233 ..." finds 233...
            msisdn = check_subscription({"msisdn": msisdn}, config.timezone).msisdn
        except InvalidRecord:
            return page(request, 0, limit, offset, [])
    with engine.connect() as connection:
        count, rows = list_subscriptions(connection, limit, offset, msisdn, status)
    return page(request, count, limit, offset, rows)


@router.post(
    BASE,
    response_model=Subscription,
    status_code=201,
    responses={200: {"model": Subscription, "description": "a known msisdn, renewed or reactivated"}},
)
def create_subscription(
    body: SubscriptionIn,
    response: Response,
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> dict:
    values = check_subscription(
        body.model_dump(exclude_unset=True),
        config.timezone,
        required=["msisdn", "plan", "lat", "lon"],
        max_future_minutes=config.max_future_minutes,
        languages=config.catalog().codes,
        regions=config.regions(),
    )
    with engine.begin() as connection:
        row, outcome = add_subscription(connection, values, _rules(config))
    response.status_code = 201 if outcome == Outcome.NEW else 200
    return row


@router.get(BASE + "{subscription_id}/", response_model=Subscription)
def subscription(subscription_id: IdPath, engine: sa.Engine = Depends(database)) -> dict:
    with engine.connect() as connection:
        return get_subscription(connection, subscription_id)


def _change(
    subscription_id: int, body: SubscriptionIn, engine: sa.Engine, config: Settings, required: list[str]
) -> dict:
    status = _status(body)
    values = check_subscription(
        body.model_dump(exclude_unset=True),
        config.timezone,
        required=required,
        max_future_minutes=config.max_future_minutes,
        languages=config.catalog().codes,
        regions=config.regions(),
    )
    with engine.begin() as connection:
        return change_subscription(connection, subscription_id, values, status, _rules(config))


@router.put(BASE + "{subscription_id}/", response_model=Subscription)
def replace_subscription(
    subscription_id: IdPath,
    body: SubscriptionIn,
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> dict:
    return _change(subscription_id, body, engine, config, ["plan", "lat", "lon"])


@router.patch(BASE + "{subscription_id}/", response_model=Subscription)
def update_subscription(
    subscription_id: IdPath,
    body: SubscriptionIn,
    engine: sa.Engine = Depends(database),
    config: Settings = Depends(settings),
) -> dict:
    return _change(subscription_id, body, engine, config, [])


@router.delete(BASE + "{subscription_id}/", status_code=204, response_class=Response)
def delete_subscription(
    subscription_id: IdPath, engine: sa.Engine = Depends(database), config: Settings = Depends(settings)
) -> Response:
    """Cancel with reason `api`; the subscription, its billing and SMS history stay."""
    with engine.begin() as connection:
        cancel_subscription(connection, subscription_id, _rules(config))
    return Response(status_code=204)


@router.get(BASE + "{subscription_id}/billing_attempts/", response_model=Page[BillingAttempt])
def billing_attempts(
    request: Request,
    subscription_id: IdPath,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    engine: sa.Engine = Depends(database),
) -> dict:
    """Every charge attempt for this subscription, newest first (read-only)."""
    with engine.connect() as connection:
        count, rows = list_billing_attempts(connection, subscription_id, limit, offset)
    return page(request, count, limit, offset, rows)


@router.get(BASE + "{subscription_id}/sms_messages/", response_model=Page[SmsMessage])
def sms_messages(
    request: Request,
    subscription_id: IdPath,
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
    engine: sa.Engine = Depends(database),
) -> dict:
    """Every SMS planned or sent to this subscription, newest day first (read-only)."""
    with engine.connect() as connection:
        count, rows = list_sms_messages(connection, subscription_id, limit, offset)
    return page(request, count, limit, offset, rows)


@router.get(BASE + "{subscription_id}/consent/", response_model=list[ConsentRecord])
def consent(subscription_id: IdPath, engine: sa.Engine = Depends(database)) -> list[dict]:
    """Every change of this subscriber's consent, oldest first, with its place in the chain."""
    with engine.connect() as connection:
        found = get_subscription(connection, subscription_id)
        return history(connection, found["msisdn"])
