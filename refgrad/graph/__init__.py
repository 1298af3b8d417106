"""The traced model as a DAG of primitive applications with named leaves."""

from refgrad.graph.graph import Graph, Node

__all__ = ["Graph", "Node"]
