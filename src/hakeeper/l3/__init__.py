"""HA routers as Neutron's L3 HA runs them: router spec, Neutron import, scheduler, data plane."""
