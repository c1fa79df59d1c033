from hakeeper.openstack.haproxy import parse_show_proc

SHOW_PROC = """\
#<PID>          <type>          <reloads>       <uptime>        <version>
19611           master          1 [failed: 0]   0d00h00m01s     2.6.12-1+deb12u4
# workers
19635           worker          0               0d00h00m00s     2.6.12-1+deb12u4
# old workers
19621           worker          1               0d00h00m01s     2.6.12-1+deb12u4
# programs

"""


def test_parse_show_proc() -> None:
    procs = parse_show_proc(SHOW_PROC)
    assert [(p.pid, p.kind, p.reloads, p.old) for p in procs] == [
        (19611, "master", 1, False), (19635, "worker", 0, False), (19621, "worker", 1, True)]


# `show peers` from c1 of the OpenStack lab, shortened: c3's session is up, c2's is being replaced.
SHOW_PEERS = """\
0x5651be26e150: [06/Dec/2026:11:16:59] id=hakeeper disabled=0 flags=0x6811 resync_timeout=4s task_calls=5
  0x5651be2723d0: id=c3(remote,active) addr=10.93.1.13:1024 last_status=ESTA last_hdshk=0s
        reconnect=1s heartbeat=2s confirm=0 tx_hbt=0 rx_hbt=0 no_hbt=0 new_conn=1 proto_err=0 coll=1
        flags=0x20000200 appctx:0x7fdaa4041130 st0=7 st1=0 task_calls=5 state=EST
        shared tables:
              table:0x5651be281570 id=mysql-db update=0 localupdate=0 commitupdate=0 refcnt=1
  0x5651be271320: id=c2(remote,inactive) addr=10.93.1.12:1024 last_status=ESTA last_hdshk=1s
        reconnect=0s heartbeat=1s confirm=0 tx_hbt=0 rx_hbt=0 no_hbt=0 new_conn=1 proto_err=0 coll=1
        flags=0x0
        shared tables:
              table:0x5651be281570 id=mysql-db update=0 localupdate=0 commitupdate=0 refcnt=1
  0x5651be26e2c0: id=c1(local,inactive) addr=10.93.1.11:1024 last_status=NONE last_hdshk=<NEVER>
        flags=0x0
"""


def test_parse_show_peers_names_each_remote_session_state() -> None:
    from hakeeper.openstack.haproxy import parse_show_peers

    assert parse_show_peers(SHOW_PEERS) == {"c3": "EST", "c2": ""}
    assert parse_show_peers("") == {}
