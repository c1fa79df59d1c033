"""Conformance runner over Pacemaker 2.1.5's scheduler regression suite."""
