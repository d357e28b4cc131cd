"""The UI's API call, made the way a process in Portmaster's trusted root makes it.

Run by a copy of python3 placed under <data>/updates/ (the stand-in UI), it GETs the
database API the Portmaster UI opens as a websocket and prints {"status", "body"}.
"""

import http.client
import json

connection = http.client.HTTPConnection("127.0.0.1", 817, timeout=10)
connection.request("GET", "/api/database/v1")
response = connection.getresponse()
print(json.dumps({"status": response.status, "body": response.read().decode()}))
