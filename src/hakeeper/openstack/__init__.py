"""OpenStack controller HA: a short profile → haproxy.cfg, VRRP (keepalived.conf syntax), a cluster spec.

`profile` reads and checks the operator's description, `render` turns it into configuration (pure),
`chefenv` imports a Chef environment (the rcbops `vips` map), `haproxy` runs haproxy as a managed
resource, `demo` shows a failover live.
"""
