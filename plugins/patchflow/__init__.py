"""patchflow Airflow integration: CLC hooks, the patch-completion trigger and rollout operators.

Import-light on purpose: submodules are imported where used.
"""
