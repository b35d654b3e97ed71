"""Running Stash's backup and restore hooks (prober Handlers) where the transfer runs: exec as a local process
(the Job's container, or this machine in local mode), httpGet/httpPost/tcpSocket from here; every action under a
timeout; templates rendered from the session summary; executionPolicy decided from the target's phase."""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stashplan.errors import TransferError
from stashplan.objects import set_condition
from stashplan.transfer.hook_processes import HookProcesses

DEFAULT_TIMEOUT = 300.0  # seconds, Stash's prober default; Stash's exec has none (stashed/stash#1340)
OUTPUT_LIMIT = 10 * 1024  # bytes of a hook's output or response kept for the error message
log = logging.getLogger(__name__)
TEMPLATE_ACTION = re.compile(r"(\s*){{(-\s)?(.*?)(\s-)?}}(\s*)", re.DOTALL)


class HookError(TransferError):
    """A hook failed, timed out or could not be run; the message says which and why, on one line."""


@dataclass(frozen=True)
class Summary:
    """What Stash renders hook templates with (its v1beta1.Summary): the session, invoker, target, outcome."""

    name: str
    namespace: str
    invoker: Mapping[str, str]  # APIGroup, Kind, Name
    target: Mapping[str, str]  # APIVersion, Kind, Name, Namespace
    phase: str = ""
    duration: str = ""
    error: str = ""
    retry_left: int = 0

    def lookup(self, path: str) -> str:
        head, _, rest = path.partition(".")
        values: dict[str, Any] = {
            "Name": self.name, "Namespace": self.namespace, "RetryLeft": str(self.retry_left),
            "Invoker": self.invoker, "Target": self.target,
            "Status": {"Phase": self.phase, "Duration": self.duration, "Error": self.error},
        }
        value = values.get(head, "")
        return str(value.get(rest, "") if isinstance(value, Mapping) else value)


def render(text: str, summary: Summary) -> str:
    """Replace each `{{ .Path }}` with the summary's value (the plan accepted only such references); Go's
    `{{-` and `-}}` trim the whitespace before and after; the result is trimmed, as Stash does."""
    if "{{" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        before, left, path, right, after = match.groups()
        value = summary.lookup(path.strip().lstrip("."))
        return ("" if left else before) + value + ("" if right else after)

    return TEMPLATE_ACTION.sub(one, text).strip()


def allowed(policy: str, phase: str, retry_left: int) -> bool:
    """Stash's IsAllowedByExecutionPolicy: whether a post hook runs after a target ended in `phase`."""
    if policy == "OnSuccess":
        return phase == "Succeeded"
    if policy == "OnFailure":
        return phase == "Failed"
    if policy == "OnFinalRetryFailure":
        return phase == "Failed" and retry_left <= 0
    return True


def run_hook(hook: Mapping[str, Any], summary: Summary, *, timeout: float, default_host: str) -> None:
    """Run one hook within `timeout` seconds; HookError unless it succeeded (exit 0, HTTP 2xx/3xx, port open)."""
    if timeout <= 0:
        raise HookError("no time left before the session deadline")
    if hook.get("exec"):
        _exec([render(str(a), summary) for a in hook["exec"].get("command") or []], timeout)
    elif hook.get("httpGet"):
        _http("GET", hook["httpGet"], None, timeout, default_host)
    elif hook.get("httpPost"):
        post = hook["httpPost"]
        _http("POST", post, _post_body(post, summary), timeout, default_host)
    elif hook.get("tcpSocket"):
        _tcp(hook["tcpSocket"], timeout, default_host)
    else:
        raise HookError("the hook has no exec, httpGet, httpPost or tcpSocket action")


def _tail(data: bytes) -> str:
    text = data[-OUTPUT_LIMIT:].decode(errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-3:])[-500:]


def _exec(argv: list[str], timeout: float) -> None:
    if not argv:
        raise HookError("exec has an empty command")
    processes = HookProcesses()
    with tempfile.TemporaryFile() as out:
        processes.begin()
        try:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            except OSError as exc:
                raise HookError(f"exec {argv[0]}: cannot run it: {exc.strerror or exc}") from None
            processes.started(proc.pid)
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                processes.end()
                proc.wait()
                raise HookError(f"exec {argv[0]} did not finish within {timeout:g}s and was killed") from None
        finally:
            left = processes.end()  # nothing it started outlives the hook: its session, and what left it
            if left:
                log.info("ended %d process(es) the %s hook had left running", left, argv[0])
        if code != 0:
            out.seek(0)
            tail = _tail(out.read())
            how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
            raise HookError(f"exec {argv[0]} {how}" + (f": {tail}" if tail else ""))


def _post_body(post: Mapping[str, Any], summary: Summary) -> tuple[bytes, str]:
    if post.get("form"):
        pairs = [(e["key"], v) for e in post["form"] for v in e.get("values") or [""]]
        return urllib.parse.urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    body = render(str(post.get("body") or ""), summary)
    try:
        json.loads(body)
        kind = "application/json"
    except ValueError:
        kind = "text/plain; charset=utf-8"
    return body.encode(), kind


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """As Stash's prober: a redirect is not followed, and counts as success."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _http(method: str, action: Mapping[str, Any], body: tuple[bytes, str] | None, timeout: float,
          default_host: str) -> None:
    scheme = str(action.get("scheme") or "HTTP").lower()
    host = str(action.get("host") or default_host)
    path = str(action.get("path") or "/")
    netloc = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{netloc}:{int(action['port'])}{path if path.startswith('/') else '/' + path}"
    headers = {"User-Agent": "stashplan-hook"}
    for header in action.get("httpHeaders") or []:
        headers[str(header["name"])] = str(header.get("value", ""))
    data = None
    if body is not None:
        data = body[0]
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = body[1]
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), _NoRedirect(), urllib.request.HTTPSHandler(context=ssl.create_default_context())
    )
    what = f"{method} {url}"
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(OUTPUT_LIMIT)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:
            return
        raise HookError(f"{what} answered HTTP {exc.code}" + (f": {_tail(exc.read(OUTPUT_LIMIT))}" if exc.fp else "")) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HookError(f"{what} failed: {reason}") from None


def _tcp(action: Mapping[str, Any], timeout: float, default_host: str) -> None:
    host = str(action.get("host") or default_host)
    port = int(action["port"])
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise HookError(f"tcpSocket {host}:{port}: {exc.strerror or exc}") from None


def default_host(appbinding: Mapping[str, Any]) -> str:
    """Where an httpGet/httpPost/tcpSocket hook without `host` goes: Stash uses the database pod's IP; stashplan
    uses the AppBinding's address (its Service `<name>.<namespace>.svc` or its URL's host), else this machine."""
    client = (appbinding.get("spec") or {}).get("clientConfig") or {}
    service = client.get("service") or {}
    if service.get("name"):
        namespace = service.get("namespace") or (appbinding.get("metadata") or {}).get("namespace") or "default"
        return f"{service['name']}.{namespace}.svc"
    host = urllib.parse.urlsplit(str(client.get("url") or "")).hostname
    return host or "127.0.0.1"


def execute(
    hook_type: str,
    hook: Mapping[str, Any] | None,
    summary: Summary,
    conditions: list[dict],
    now: datetime,
    *,
    timeout: float,
    default_host: str,
) -> tuple[list[dict], str]:
    """Run the `hook_type` hook (preBackup, postBackup, preRestore, postRestore) if there is one, as Stash does:
    a post hook only when its executionPolicy allows the summary's phase. Returns the conditions with
    `<HookType>HookExecutionSucceeded` set, and the error ("" when it succeeded, was skipped or is absent)."""
    if not hook:
        return conditions, ""
    name = hook_type[0].upper() + hook_type[1:]
    ctype = f"{name}HookExecutionSucceeded"
    if hook_type.startswith("post"):
        policy = str(hook.get("executionPolicy") or "Always")
        if not allowed(policy, summary.phase, summary.retry_left):
            why = f"Skipping executing {hook_type} hook. Reason: executionPolicy is {policy!r} but phase is {summary.phase!r}."
            log.info("%s", why)
            return set_condition(conditions, ctype, True, f"SuccessfullyExecuted{name}Hook", why, now), ""
    log.info("executing %s hook", hook_type)
    try:
        run_hook(hook, summary, timeout=timeout, default_host=default_host)
    except HookError as exc:
        log.error("%s hook failed: %s", hook_type, exc)
        message = f"Failed to execute {hook_type} hook. Reason: {exc}"
        return set_condition(conditions, ctype, False, f"FailedToExecute{name}Hook", message, now), f"{hook_type} hook failed: {exc}"
    message = f"Successfully executed {hook_type} hook."
    log.info("%s", message)
    return set_condition(conditions, ctype, True, f"SuccessfullyExecuted{name}Hook", message, now), ""
