"""The node agent: our kubelet substitute. It watches pods and runs their containers as local
processes, each in a private mount namespace, with Argo's pod contract carried out by Argo's own
`argoexec` (init, wait and `emissary` for main). It starts step code as processes and never
imports `steps`.
"""
