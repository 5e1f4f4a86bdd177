"""The baseline: OpenAI's minimal SIP webhook sample, written as the Realtime SIP guide writes it.

Flask, ``client.webhooks.unwrap`` to verify and parse, ``client.realtime.calls.accept`` to
answer, and a thread per call that opens the sideband and sends the greeting. Nothing else:
no dedupe, no routing, no store. Run under gunicorn gthread, as a user would deploy it::

    gunicorn -k gthread -w 2 --threads 8 --chdir bench _docs_sample:app

It reads ``OPENAI_API_KEY``, ``OPENAI_WEBHOOK_SECRET`` and ``OPENAI_BASE_URL`` (the emulator).
"""

from __future__ import annotations

import os
import threading

from flask import Flask, Response, request
from openai import InvalidWebhookSignatureError, OpenAI

app = Flask(__name__)
client = OpenAI(webhook_secret=os.environ["OPENAI_WEBHOOK_SECRET"])

call_accept = {
    "type": "realtime",
    "instructions": "You are a support agent.",
    "model": "gpt-realtime",
}

response_create = {
    "type": "response.create",
    "response": {"instructions": "Say to the user 'Thank you for calling, how can I help you'"},
}


def websocket_task(call_id: str) -> None:
    """The call's sideband: greet, then read events until the call ends."""
    try:
        with client.realtime.connect(call_id=call_id) as connection:
            connection.send(response_create)  # type: ignore[arg-type]
            for _event in connection:
                pass
    except Exception:  # the call ended; the sample's thread just stops
        return


@app.route("/", methods=["POST"])
def webhook() -> Response:
    try:
        event = client.webhooks.unwrap(request.data, request.headers)
        if event.type == "realtime.call.incoming":
            client.realtime.calls.accept(event.data.call_id, **call_accept)  # type: ignore[arg-type]
            threading.Thread(target=websocket_task, args=(event.data.call_id,), daemon=True).start()
            return Response(status=200)
    except InvalidWebhookSignatureError as e:
        print("Invalid signature", e)
        return Response("Invalid signature", status=400)
    return Response(status=200)
