"""A stand-in OpenWeather API for the schemathesis run: answers every `q` with a fixed reply."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        query = parse_qs(urlparse(self.path).query)
        city = (query.get("q") or ["Nowhere"])[0]
        body = json.dumps({
            "name": city,
            "sys": {"country": "GB"},
            "main": {"temp": 12.5, "humidity": 81},
            "weather": [{"description": "light rain"}],
            "wind": {"speed": 4.1},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
