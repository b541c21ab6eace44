"""The status page at `/` (SPEC §16): the status snapshot as one server-rendered HTML page.

Everything is inline (no script, no external style or font), so it works offline and shows the
same in any browser; it reloads itself every minute.
"""

from __future__ import annotations

from html import escape

REFRESH_SECONDS = 60
OUTCOME_CSS = {"applied": "ok", "duplicate": "warn"}
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem;color:#1d2330;background:#f6f7f9}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
.sub{color:#5b6475;margin:0 0 1rem}
.tiles{display:flex;flex-wrap:wrap;gap:.6rem}
.tile{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:.6rem .9rem;min-width:7.5rem}
.tile b{display:block;font-size:1.6rem}.tile span{color:#5b6475;font-size:.85rem}
table{border-collapse:collapse;background:#fff;width:100%;font-size:.9rem}
td,th{border:1px solid #dde1e8;padding:.35rem .5rem;text-align:left;vertical-align:top}
.ok{color:#14773a}.bad{color:#b3261e;font-weight:600}.warn{color:#9a6700;font-weight:600}
"""


def _tile(key: str, label: str, value: object) -> str:
    return (
        f'<div class="tile" data-figure="{escape(key)}"><b>{escape(str(value))}</b>'
        f"<span>{escape(label)}</span></div>"
    )


def _rate(value: float) -> str:
    return f"{value:.1%}"


def _checks(checks: list[dict]) -> str:
    rows = []
    for check in checks:
        verdict = "passed" if check["passed"] else ("failed" if check["severity"] == "ERROR" else "warning")
        css = "ok" if check["passed"] else ("bad" if check["severity"] == "ERROR" else "warn")
        rows.append(
            f'<tr data-check="{escape(check["name"])}"><td>{escape(check["name"])}</td>'
            f'<td class="{css}">{verdict} ({escape(check["severity"])})</td>'
            f"<td>{escape(check['description'])}</td></tr>"
        )
    return "<table><tr><th>check</th><th>verdict</th><th>why</th></tr>" + "".join(rows) + "</table>"


def _files(files: list[dict]) -> str:
    if not files:
        return "<p>No file taken yet.</p>"
    rows = [
        f'<tr data-file="{escape(f["name"])}"><td>{escape(f["taken_at"][:19].replace("T", " "))}</td>'
        f"<td>{escape(f['name'])}</td><td>{escape(f['kind'])}</td>"
        f'<td class="{OUTCOME_CSS.get(f["outcome"], "bad")}">{escape(f["outcome"])}</td>'
        f"<td>{escape(f['detail'])}</td></tr>"
        for f in files
    ]
    return (
        "<table><tr><th>taken (UTC)</th><th>file</th><th>kind</th><th>outcome</th><th>detail</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _regions(regions: list[dict]) -> str:
    """Each region's SMS on its own local today; nothing with one region."""
    if not regions:
        return ""
    rows = [
        f'<tr data-region="{escape(r["region"])}"><td>{escape(r["region"])}</td>'
        f"<td>{escape(r['day'])} ({escape(r['timezone'])})</td><td>{r['planned']}</td>"
        f"<td>{r['sent']}</td><td>{r['delivered']}</td><td>{r['failed']}</td></tr>"
        for r in regions
    ]
    return (
        "<h2>SMS today per region</h2><table><tr><th>region</th><th>local day</th><th>planned</th>"
        "<th>sent</th><th>delivered</th><th>failed</th></tr>" + "".join(rows) + "</table>"
    )


def render(status: dict, dagster_url: str) -> str:
    sms, bill, grid = status["sms"], status["billing"], status["grid"]
    not_delivered = sms["failed"] + sms["undelivered"] + sms["rejected"] + sms["expired"]
    age = "no grid" if grid["age_hours"] is None else f"{grid['age_hours']:g} h"
    grid_css = "bad" if grid["age_hours"] is None or grid["age_hours"] > grid["max_age_hours"] else "ok"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ISKA status {escape(status["day"])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}"><style>{STYLE}</style></head>
<body>
<h1>ISKA status — {escape(status["day"])}</h1>
<p class="sub">{escape(status["timezone"])} · counted at {escape(status["generated_at"])} ·
the same as JSON at <a href="/status">/status</a> · runs and plots in
<a href="{escape(dagster_url)}">Dagster</a></p>
<h2>SMS today</h2>
<div class="tiles">
{_tile("sms.planned", "planned", sms["planned"])}{_tile("sms.sent", "sent", sms["sent"])}
{_tile("sms.delivered", "delivered", sms["delivered"])}{_tile("sms.failed", "failed", not_delivered)}
{_tile("sms.accepted", "awaiting report", sms["accepted"])}{_tile("sms.pending", "still to send", sms["pending"])}
{_tile("sms.delivery_rate", "delivered of sent", _rate(sms["delivery_rate"]))}
</div>
<p class="sub">failed = {sms["failed"]} failed + {sms["undelivered"]} undelivered + {sms["rejected"]} rejected
+ {sms["expired"]} expired; {sms["skipped_too_late"]} skipped too late</p>
{_regions(status.get("regions", []))}
<h2>Billing today</h2>
<div class="tiles">
{_tile("billing.due", "due", bill["due"])}{_tile("billing.charged", "charged", bill["charged"])}
{_tile("billing.declined", "declined", bill["declined"])}
{_tile("billing.pending", "awaiting the payer", bill["pending"])}{_tile("billing.expired", "expired", bill["expired"])}
{_tile("billing.transport_errors", "no answer", bill["transport_errors"] + bill["auth_errors"])}
{_tile("billing.cancelled_for_billing", "cancelled for billing", bill["cancelled_for_billing"])}
{_tile("billing.opt_outs", "opt-outs", bill["opt_outs"])}
</div>
<h2>Forecast grid</h2>
<p data-figure="grid.age">{grid["points"]} active points, newest issued {escape(str(grid["issued_at"]))}:
<span class="{grid_css}">{escape(age)} old</span> (limit {grid["max_age_hours"]:g} h)</p>
<h2>Checks</h2>
{_checks(status["checks"])}
<h2>Last files</h2>
{_files(status["last_files"])}
</body></html>
"""
