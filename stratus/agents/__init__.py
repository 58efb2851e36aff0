"""The four agents of STRATUS (Detection, Diagnosis, Mitigation, Undo) as graph nodes.

Agents decide; they read and change the world only through the Cluster protocol and the tools.
"""
