"""Repository usage policy: may a BackupConfiguration or RestoreSession in namespace N use a Repository
of another namespace (`spec.usagePolicy.allowedNamespaces`: Same, All or Selector)? Pure."""

from __future__ import annotations

from collections.abc import Mapping


def selector_matches(selector: Mapping, labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics: matchLabels AND every matchExpression (In, NotIn, Exists, DoesNotExist)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key", ""), expr.get("operator", ""), list(expr.get("values") or [])
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def repository_denied(repository: dict, user_namespace: str, namespace_labels: Mapping[str, str]) -> str | None:
    """None when `user_namespace` may use `repository`; otherwise why not, naming the field."""
    repo_ns = repository["metadata"].get("namespace", "")
    if repo_ns == user_namespace:
        return None
    allowed = ((repository.get("spec") or {}).get("usagePolicy") or {}).get("allowedNamespaces") or {}
    source = allowed.get("from") or "Same"
    if source == "All":
        return None
    if source == "Selector" and selector_matches(allowed.get("selector") or {}, namespace_labels):
        return None
    return (f"Repository {repo_ns}/{repository['metadata'].get('name', '')} does not allow namespace "
            f"{user_namespace!r} (spec.usagePolicy.allowedNamespaces.from: {source})")
