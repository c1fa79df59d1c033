"""The node agent: membership, leader loop, monitors, plan execution, operator commands."""
