"""The agent's pure core: its decisions as data in, effects out, time passed in.

`types` is the interface (inputs, effects, and how a caller drives the core); `leader` holds the
leader's decisions. See docs/agent.md, "The core".
"""
