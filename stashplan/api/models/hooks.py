"""Backup and restore hooks (kmodules prober Handler): exec, httpGet, httpPost or tcpSocket, and the
postBackup/postRestore executionPolicy. Checked at plan time, including the Go-template fields Stash renders
(`{{ .Status.Phase }}`...): only plain references to the session summary are accepted. Pure."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator

from stashplan.api.models.common import StashModel

# The summary fields Stash renders hook templates with (its v1beta1.Summary), as Go template paths.
TEMPLATE_FIELDS = frozenset({
    "Name", "Namespace", "RetryLeft",
    "Invoker.APIGroup", "Invoker.Kind", "Invoker.Name",
    "Target.APIVersion", "Target.Kind", "Target.Name", "Target.Namespace",
    "Status.Phase", "Status.Duration", "Status.Error",
})
TEMPLATE_ACTION = re.compile(r"{{(.*?)}}", re.DOTALL)
TEMPLATE_REFERENCE = re.compile(r"^(?:-\s)?\s*\.([A-Za-z][A-Za-z.]*)\s*(?:\s-)?$")


def check_template(text: str) -> str:
    """Accept text whose `{{ }}` actions are plain summary references, such as `{{ .Status.Error }}`."""
    for action in TEMPLATE_ACTION.findall(text):
        match = TEMPLATE_REFERENCE.match(action)
        if match is None or match.group(1) not in TEMPLATE_FIELDS:
            raise ValueError(
                f"template action {{{{{action}}}}} is not supported: stashplan renders only plain references "
                f"to the session summary ({', '.join('.' + f for f in sorted(TEMPLATE_FIELDS))}), "
                "no functions or pipelines"
            )
    return text


Templated = Annotated[str, AfterValidator(check_template)]


def check_port(value: int | str) -> int | str:
    """A port number (1-65535, or its digits as text); named ports cannot be looked up outside a pod."""
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError(
            f"named port {value!r} cannot be resolved: stashplan runs hooks from the backup Job, which has no "
            "container ports to look the name up in; give the port number"
        )
    if not 0 < int(text) < 65536:
        raise ValueError(f"port {value} is out of range 1-65535")
    return value


Port = Annotated[int | str, AfterValidator(check_port)]


class URIScheme(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"


class HTTPHeader(StashModel):
    name: str = Field(min_length=1)
    value: str = ""


class FormEntry(StashModel):
    key: str = Field(min_length=1)
    values: list[str] | None = None


class ExecAction(StashModel):
    command: list[Templated] = Field(min_length=1, description="argv, run without a shell")


class HTTPGetAction(StashModel):
    path: str | None = None
    port: Port
    host: str | None = None
    scheme: URIScheme = URIScheme.HTTP
    http_headers: list[HTTPHeader] | None = None


class HTTPPostAction(HTTPGetAction):
    body: Templated | None = None
    form: list[FormEntry] | None = None

    @model_validator(mode="after")
    def _body_or_form(self) -> HTTPPostAction:
        if self.body is not None and self.form:
            raise ValueError("set body or form, not both")
        return self


class TCPSocketAction(StashModel):
    port: Port
    host: str | None = None


ACTIONS = ("exec", "httpGet", "httpPost", "tcpSocket")


class Handler(StashModel):
    """One hook action; exactly one of exec, httpGet, httpPost, tcpSocket."""

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    http_post: HTTPPostAction | None = None
    tcp_socket: TCPSocketAction | None = None
    container_name: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Handler:
        given = [a for a, v in zip(ACTIONS, (self.exec, self.http_get, self.http_post, self.tcp_socket), strict=True)
                 if v is not None]
        if len(given) != 1:
            found = f"found {', '.join(given)}" if given else "found none"
            raise ValueError(f"exactly one of exec, httpGet, httpPost or tcpSocket is required ({found})")
        return self


class ExecutionPolicy(StrEnum):
    ALWAYS = "Always"
    ON_SUCCESS = "OnSuccess"
    ON_FAILURE = "OnFailure"
    ON_FINAL_RETRY_FAILURE = "OnFinalRetryFailure"


class PostBackupHook(Handler):
    execution_policy: ExecutionPolicy = ExecutionPolicy.ALWAYS


class PostRestoreHook(Handler):
    execution_policy: ExecutionPolicy = ExecutionPolicy.ALWAYS

    @model_validator(mode="after")
    def _no_retry_policy(self) -> PostRestoreHook:
        if self.execution_policy == ExecutionPolicy.ON_FINAL_RETRY_FAILURE:
            raise ValueError("executionPolicy OnFinalRetryFailure is for postBackup only: a RestoreSession is "
                             "never retried; use OnFailure")
        return self


class BackupHooks(StashModel):
    pre_backup: Handler | None = None
    post_backup: PostBackupHook | None = None


class RestoreHooks(StashModel):
    pre_restore: Handler | None = None
    post_restore: PostRestoreHook | None = None
