#!/usr/bin/env python3
"""Streaming recognition over iFLYTEK's WebAPI 2.0, written from its public description.

Signs the WebSocket URL (HMAC-SHA256 over "host: …\\ndate: …\\nGET <path> HTTP/1.1",
authorization = base64 of api_key="…", algorithm="hmac-sha256", headers="host date
request-line", signature="…"), sends 16 kHz 16-bit mono PCM in 1,280-byte frames (40 ms)
with data.status 0 (plus common and business), 1, …, and an empty last frame with
data.status 2, and prints data.result of every response until data.status 2.

    /usr/bin/python3 examples/webapi/iat_client.py --url ws://127.0.0.1:8889/v2/iat \\
        --app-id demo --api-key KEY --api-secret SECRET --audio door.pcm --grammar commands.jsgf

Needs websocket-client (Debian python3-websocket).
"""
import argparse
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from email.utils import formatdate
from urllib.parse import urlencode, urlparse

import websocket

FRAME_BYTES = 1280  # 40 ms of 16 kHz 16-bit mono
INTERVAL = 0.04


def signed_url(url, api_key, api_secret):
    u = urlparse(url)
    date = formatdate(usegmt=True)
    origin = "host: %s\ndate: %s\nGET %s HTTP/1.1" % (u.netloc, date, u.path)
    sig = base64.b64encode(hmac.new(api_secret.encode(), origin.encode(), hashlib.sha256).digest()).decode()
    authz = 'api_key="%s", algorithm="hmac-sha256", headers="host date request-line", signature="%s"' % (api_key, sig)
    query = urlencode({"authorization": base64.b64encode(authz.encode()).decode(), "date": date, "host": u.netloc})
    return url + "?" + query


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True, help="ws://host:port/v2/iat")
    p.add_argument("--app-id", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--api-secret", required=True)
    p.add_argument("--audio", required=True, help="16 kHz 16-bit mono PCM")
    p.add_argument("--grammar", help="a JSGF grammar file (business.grammar)")
    p.add_argument("--fast", action="store_true", help="send frames as fast as possible, not every 40 ms")
    p.add_argument("--raw", action="store_true", help="print every response as received")
    a = p.parse_args()

    pcm = open(a.audio, "rb").read()
    business = {"language": "en_us", "domain": "iat", "accent": "mandarin"}
    if a.grammar:
        business["grammar"] = open(a.grammar).read()

    ws = websocket.create_connection(signed_url(a.url, a.api_key, a.api_secret), timeout=30)
    frames = [pcm[i:i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)] + [b""]

    def send():
        for i, chunk in enumerate(frames):
            data = {"status": 1, "format": "audio/L16;rate=16000", "encoding": "raw",
                    "audio": base64.b64encode(chunk).decode()}
            msg = {"data": data}
            if i == 0:
                data["status"] = 0
                msg["common"], msg["business"] = {"app_id": a.app_id}, business
            elif i == len(frames) - 1:
                data["status"] = 2
            ws.send(json.dumps(msg))
            if not a.fast:
                time.sleep(INTERVAL)

    sender = threading.Thread(target=send)
    sender.start()
    code = 0
    while True:
        msg = ws.recv()
        if a.raw:
            print(msg)
        r = json.loads(msg)
        if r["code"] != 0:
            if not a.raw:
                print("error %d: %s (sid %s)" % (r["code"], r["message"], r["sid"]))
            code = 1
            break
        if not a.raw:
            print("sid %s status %d: %s" % (r["sid"], r["data"]["status"], json.dumps(r["data"].get("result"))))
        if r["data"]["status"] == 2:
            break
    sender.join()
    ws.close()
    print("sent %d frames of 40 ms" % len(frames))
    return code


if __name__ == "__main__":
    sys.exit(main())
