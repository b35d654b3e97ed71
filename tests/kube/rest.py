"""A minimal JSON client for a test API server, authenticated by a kubeconfig's client certificate or a
bearer token (what the test kubelet and the e2e checks use; the product goes through stashplan's adapter)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml


class ApiError(Exception):
    """A non-2xx answer: `status` and the server's Status object."""

    def __init__(self, status: int, body: dict) -> None:
        super().__init__(f"HTTP {status}: {body.get('message') or body}")
        self.status = status
        self.body = body


class Rest:
    """GET/POST/PUT/PATCH/DELETE of JSON documents on one API server."""

    def __init__(self, kubeconfig: Path | str, token: str | None = None) -> None:
        doc = yaml.safe_load(Path(kubeconfig).read_text())
        cluster = doc["clusters"][0]["cluster"]
        user = doc["users"][0]["user"]
        self.server = str(cluster["server"]).rstrip("/")
        self._ctx = ssl.create_default_context(cafile=cluster["certificate-authority"])
        self._token = token
        if token is None:
            self._ctx.load_cert_chain(user["client-certificate"], user["client-key"])

    def call(self, method: str, path: str, body: Any = None, *, query: dict[str, str] | None = None,
             content_type: str = "application/json", timeout: float = 30) -> dict:  # fmt: skip
        url = self.server + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        if self._token:
            req.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._ctx) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"message": raw.decode(errors="replace")}
            raise ApiError(exc.code, payload) from None
        return json.loads(raw) if raw else {}

    def get(self, path: str, **query: str) -> dict:
        return self.call("GET", path, query=query or None)

    def post(self, path: str, body: dict) -> dict:
        return self.call("POST", path, body)

    def put(self, path: str, body: dict) -> dict:
        return self.call("PUT", path, body)

    def merge_patch(self, path: str, body: dict) -> dict:
        return self.call("PATCH", path, body, content_type="application/merge-patch+json")

    def delete(self, path: str, **query: str) -> dict:
        return self.call("DELETE", path, query=query or None)
