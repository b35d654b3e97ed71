"""AppBinding (appcatalog.appscode.com/v1alpha1): how to reach a database and where its credentials are."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stashplan.api.models.common import DnsName, FreeForm, ObjectMeta, StashModel


class ServiceReference(StashModel):
    scheme: str | None = None
    namespace: str | None = None
    name: str | None = None
    port: int | None = None
    path: str | None = None
    query: str | None = None


class ClientConfig(StashModel):
    """`url` and/or `service` (KubeDB writes both; `providers.databases.endpoint` gives the precedence, Stash's:
    host and port from the service, database and query from the URL); TLS options alongside."""

    url: str | None = None
    service: ServiceReference | None = None
    insecure_skip_tls_verify: bool | None = Field(default=None, alias="insecureSkipTLSVerify")
    ca_bundle: str | None = None
    server_name: str | None = None


class SecretReference(StashModel):
    api_group: str | None = None
    kind: str | None = None
    name: DnsName


class AppBindingSpec(StashModel):
    type: str | None = None
    app_ref: FreeForm | None = None
    version: str | None = None
    client_config: ClientConfig | None = None
    secret: SecretReference | None = None
    secret_transforms: list[FreeForm] | None = None
    tls_secret: SecretReference | None = None
    parameters: FreeForm | None = None


class AppBinding(StashModel):
    """A database endpoint; `spec.parameters.stash.addon` may name the backup/restore Tasks."""

    api_version: Literal["appcatalog.appscode.com/v1alpha1"]
    kind: Literal["AppBinding"]
    metadata: ObjectMeta
    spec: AppBindingSpec
