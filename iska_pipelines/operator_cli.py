"""`iska status`, `iska files`, `iska rerun`, `iska gateways` and `iska consent verify`: the
operator's view from a terminal (SPEC §13, §16, §17).

`status` and `files` read ISKA's database directly (they work while the API is down); `rerun`
goes through the Dagster webserver (ISKA_DAGSTER_URL), never around it.
"""

from __future__ import annotations

import json
import sys

from iska_pipelines.lib.consent.chain import verify
from iska_pipelines.lib.db.engine import engine_for
from iska_pipelines.lib.db.timestamps import utcnow
from iska_pipelines.lib.health.checks import HealthRules
from iska_pipelines.lib.health.intake import recent_files
from iska_pipelines.lib.health.status import snapshot
from iska_pipelines.lib.settings import Settings
from iska_pipelines.lib.sms.callbacks import account_report_url, inbound_url
from iska_pipelines.lib.tasks.graphql import DagsterGraphQL, DagsterUnavailable
from iska_pipelines.lib.tasks.reruns import job_for_partition

FAILED_ERROR = 1  # `iska status` exit code when an ERROR check fails (`consent verify`: broken)
REFUSED = 2
ACCOUNT_REPORTS = ("africastalking", "infobip")  # reports to one URL set in the account


def rules_of(settings: Settings) -> HealthRules:
    return HealthRules(
        settings.timezone, settings.sms_hour, settings.forecast_max_age_hours, settings.min_delivery_rate
    )


def status(settings: Settings, as_json: bool) -> int:
    found = snapshot(engine_for(settings.database_url), utcnow(), rules_of(settings), 10, settings.regions())
    print(json.dumps(found, indent=2) if as_json else status_text(found))
    return FAILED_ERROR if any(not c["passed"] and c["severity"] == "ERROR" for c in found["checks"]) else 0


def status_text(found: dict) -> str:
    sms, bill, grid = found["sms"], found["billing"], found["grid"]
    failed = sms["failed"] + sms["undelivered"] + sms["rejected"] + sms["expired"]
    age = "no active grid" if grid["age_hours"] is None else f"{grid['age_hours']:g} h old"
    lines = [
        f"ISKA {found['day']} ({found['timezone']})",
        f"SMS      planned {sms['planned']}  sent {sms['sent']}  delivered {sms['delivered']}  "
        f"failed {failed}  awaiting report {sms['accepted']}  still to send {sms['pending']}  "
        f"delivered of sent {sms['delivery_rate']:.1%}",
        f"Billing  due {bill['due']}  charged {bill['charged']}  declined {bill['declined']}  "
        f"awaiting the payer {bill['pending']}  expired {bill['expired']}  "
        f"no answer {bill['transport_errors'] + bill['auth_errors']}  "
        f"cancelled for billing {bill['cancelled_for_billing']}  opt-outs {bill['opt_outs']}",
        *(
            f"  {r['region']:6} {r['day']}  planned {r['planned']}  sent {r['sent']}  "
            f"delivered {r['delivered']}  failed {r['failed']}"
            for r in found.get("regions", [])
        ),
        *(
            f"Gateway  {g['gateway']}  awaiting report {g['accepted']}  delivered {g['delivered']}  "
            f"failed {g['failed']}" + (f"  last error: {g['last_error']}" if g["last_error"] else "")
            for g in found.get("gateways", [])
        ),
        f"Grid     {grid['points']} points, {age} (limit {grid['max_age_hours']:g} h)",
        "Checks",
        *(
            f"  {'ok    ' if c['passed'] else 'FAILED'} {c['severity']:5} {c['name']}: {c['description']}"
            for c in found["checks"]
        ),
        "Last files",
        *(file_line(f) for f in found["last_files"]),
    ]
    return "\n".join(lines)


def file_line(f: dict) -> str:
    return f"  {f['taken_at'][:19].replace('T', ' ')}  {f['outcome']:9} {f['partition_key']}\n      {f['detail']}"


def files(settings: Settings, refused: bool, limit: int) -> int:
    with engine_for(settings.database_url).connect() as connection:
        found = recent_files(connection, limit, refused_only=refused)
    if not found:
        print("no refused file" if refused else "no file taken yet")
    for line in found:
        print(file_line(line.as_dict()))
    return 0


def rerun(settings: Settings, key: str) -> int:
    try:
        job = job_for_partition(key)
        run, launched = DagsterGraphQL(settings.dagster_url).launch_unless_running(
            job, key, {"iska/trigger": "cli"}
        )
    except (ValueError, DagsterUnavailable) as refused:
        print(f"iska rerun: {refused}", file=sys.stderr)
        return REFUSED
    verb = "launched" if launched else "already in progress:"
    print(f"{verb} {job} run {run.run_id} for {key}: {settings.dagster_url}/runs/{run.run_id}")
    return 0


def gateways(settings: Settings) -> int:
    """Each region's SMS gateways and the URLs to give them (SPEC §17); the URLs carry the
    inbound token and a signature, so this output is for the operator's eyes only."""
    token = settings.inbound_token or "TOKEN"
    if not settings.inbound_token:
        print("ISKA_INBOUND_TOKEN is not set: ISKA refuses inbound SMS until it is (TOKEN below)")
    for region in settings.regions().all:
        print(f"[{region.code}] {region.timezone}, SMS at {region.sms_hour:02d}:00")
        for g in region.gateways:
            secret = f"${g.secret_env}" if g.secret_env else "SMS_TOKEN"
            cap = f"{g.max_tps:g}/s" if g.max_tps else "no cap"
            print(
                f"  {g.protocol:14} {g.url}  {cap}  account {g.username or '-'}  sender {g.sender or '-'}  secret {secret}"
            )
    for protocol in sorted({g.protocol for r in settings.regions().all for g in r.gateways}):
        print(f"{protocol}: inbound SMS to {inbound_url(settings.public_url, protocol, token)}")
        if protocol in ACCOUNT_REPORTS:
            report = account_report_url(settings.public_url, protocol, settings.callback_secret)
            print(f"{protocol}: delivery reports to {report}")
    return 0


def consent_verify(settings: Settings) -> int:
    """Walk the consent log's hash chain; exit 1 naming the first broken row."""
    with engine_for(settings.database_url).connect() as connection:
        found = verify(connection)
    if found.ok:
        print(f"consent log verified: {found.rows} rows, chain intact")
        return 0
    print(
        f"consent log BROKEN at consent_events row id {found.broken_id}: {found.problem} "
        f"({found.rows} rows before it verified)"
    )
    return FAILED_ERROR
