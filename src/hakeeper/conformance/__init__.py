"""Conformance with Pacemaker: generated clusters, the crm_simulate oracle, the regression suite
(runner.py, suite.py, report.py: `hakeeper conformance DIR`)."""
