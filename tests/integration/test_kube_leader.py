"""Lease-based leader election against the API emulator: one leader, take-over on expiry, races, hand-over."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from stashplan.cluster.kube import KubeCluster, RetryPolicy
from stashplan.operator.leader import LeaderElector
from tests.fixtures.kube import KubeAPI

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def elector(api: KubeAPI, identity: str, lease_seconds: int = 10) -> LeaderElector:
    cluster = KubeCluster(api.operator_kubeconfig, retry=RetryPolicy(attempts=2, base_delay=0.01))
    return LeaderElector(cluster, "stashplan", "stashplan", identity, lease_seconds)


def lease(api: KubeAPI) -> dict:
    (obj,) = api.objects("Lease")
    return obj["spec"]


def test_first_candidate_acquires_and_the_second_waits_while_the_lease_is_renewed(kube_api: KubeAPI) -> None:
    a, b = elector(kube_api, "pod-a"), elector(kube_api, "pod-b")
    assert a.try_acquire_or_renew(T0)
    assert not b.try_acquire_or_renew(T0 + timedelta(seconds=1))
    assert a.try_acquire_or_renew(T0 + timedelta(seconds=8))
    assert not b.try_acquire_or_renew(T0 + timedelta(seconds=17))
    spec = lease(kube_api)
    assert spec["holderIdentity"] == "pod-a"
    assert spec["leaseDurationSeconds"] == 10
    assert spec["leaseTransitions"] == 0
    assert a.is_leader and not b.is_leader


def test_a_standby_takes_over_once_the_leader_stops_renewing(kube_api: KubeAPI) -> None:
    a, b = elector(kube_api, "pod-a"), elector(kube_api, "pod-b")
    assert a.try_acquire_or_renew(T0)
    assert not b.try_acquire_or_renew(T0 + timedelta(seconds=9))
    assert b.try_acquire_or_renew(T0 + timedelta(seconds=10, milliseconds=1))
    spec = lease(kube_api)
    assert spec["holderIdentity"] == "pod-b"
    assert spec["leaseTransitions"] == 1
    # the old leader comes back: it must see it lost the lease and stand by
    assert not a.try_acquire_or_renew(T0 + timedelta(seconds=11))
    assert not a.is_leader


def test_release_hands_the_lease_over_without_waiting(kube_api: KubeAPI) -> None:
    a, b = elector(kube_api, "pod-a"), elector(kube_api, "pod-b")
    assert a.try_acquire_or_renew(T0)
    a.release()
    assert not a.is_leader
    assert b.try_acquire_or_renew(T0 + timedelta(seconds=1))
    assert lease(kube_api)["holderIdentity"] == "pod-b"


def race(candidates: list[LeaderElector], now: datetime) -> list[bool]:
    results: list[bool] = [False] * len(candidates)
    barrier = threading.Barrier(len(candidates))

    def run(i: int) -> None:
        barrier.wait()
        results[i] = candidates[i].try_acquire_or_renew(now)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(candidates))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_candidates_racing_for_a_new_or_expired_lease_elect_exactly_one(kube_api: KubeAPI) -> None:
    pods = [elector(kube_api, f"pod-{i}") for i in range(5)]
    assert sum(race(pods, T0)) == 1
    # everyone but the holder races again after expiry: still exactly one winner
    holder = lease(kube_api)["holderIdentity"]
    others = [p for p in pods if p.identity != holder]
    assert sum(race(others, T0 + timedelta(seconds=30))) == 1
    assert lease(kube_api)["holderIdentity"] != holder


def test_api_errors_keep_the_leader_only_within_its_lease(kube_api: KubeAPI) -> None:
    a = elector(kube_api, "pod-a", lease_seconds=9)
    assert a.try_acquire_or_renew(T0)
    kube_api.fail_next(500, count=100)
    assert a.try_acquire_or_renew(T0 + timedelta(seconds=3))  # within 2/3 of the lease: keeps leading
    assert not a.try_acquire_or_renew(T0 + timedelta(seconds=7))  # could not renew in time: steps down
    kube_api.clear_failures()
    assert a.try_acquire_or_renew(T0 + timedelta(seconds=8))  # its own lease, not yet taken: re-acquired
