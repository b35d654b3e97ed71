"""The loop's pure core (world, tasks, pods, session phases, desired, plan, render) and its one writer
(apply), the loop and Events. Desired state is computed here; nothing here moves backup bytes.
"""
