"""Desired state, pure: the Stash resources and `now` -> the CronJobs, Jobs, ServiceAccounts, RoleBindings and
status stashplan wants (Task/Function resolution, pods, session phases, bindings, usage policies)."""
