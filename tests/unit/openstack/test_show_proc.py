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
