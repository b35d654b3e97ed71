"""Which cluster a command talks to: local by default, kube with a kubeconfig or inside a pod."""

from __future__ import annotations

from stashplan.cluster.factory import settings


def test_local_mode_is_the_default_outside_a_cluster() -> None:
    assert settings(environ={}).mode == "local"


def test_a_kubeconfig_selects_kube_mode() -> None:
    assert settings(environ={"KUBECONFIG": "/k"}, cluster=None, kubeconfig="/k").mode == "kube"


def test_inside_a_pod_the_in_cluster_api_is_the_default() -> None:
    # what a trigger or backup pod sees: no kubeconfig, no STASHPLAN_CLUSTER, the service env vars
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert settings(environ=env).mode == "kube"
    assert settings(environ={**env, "STASHPLAN_CLUSTER": "local"}).mode == "local"
