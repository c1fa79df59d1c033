"""Conformance with Pacemaker: generated clusters, the crm_simulate oracle, the regression suite."""
