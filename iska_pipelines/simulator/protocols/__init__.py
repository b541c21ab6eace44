"""The SMS gateway protocols other than ISKA's own (SPEC §17), each at its provider's real path
under `/sms/{name}/`, so one gateway name answers in every protocol:

- `GET /sms/{name}/cgi-bin/sendsms`: Kannel (`kannel.py`)
- `POST /sms/{name}/version1/messaging`: Africa's Talking (`africastalking.py`)
- `POST /sms/{name}/2010-04-01/Accounts/{sid}/Messages.json`: Twilio (`twilio.py`)
- `POST /sms/{name}/sms/3/messages`: Infobip (`infobip.py`)

Each module only reads its protocol's request, words its answers and writes its delivery
reports and inbound messages; `core.py` is what they share with `POST /sms/{name}` (`iska`,
`sms.py`): the same knobs, faults, counters, idempotency and report sender.
"""

from fastapi import APIRouter

from iska_pipelines.simulator.protocols import africastalking, infobip, kannel, twilio

router = APIRouter()
for protocol in (kannel, africastalking, twilio, infobip):
    router.include_router(protocol.router)
