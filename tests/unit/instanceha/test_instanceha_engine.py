"""The engine's shell over the in-memory store: records written by compare-and-set, writes refused
without membership, events per step, and the Nova edge's errors turned into recorded reasons
(an HTTP server on loopback answers as a broken Nova would)."""

from __future__ import annotations

import asyncio
import calendar
import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest
from ihasim import FakeNova, Refused, Server

from hakeeper.agent import state as st
from hakeeper.coord.memory import MemoryStore
from hakeeper.errors import InputError
from hakeeper.instanceha import recovery as rc
from hakeeper.instanceha.commands import settings_from
from hakeeper.instanceha.engine import SLOW_VIEW, Engine, Options, read_recoveries
from hakeeper.instanceha.model import InstanceState, Phase, Settings
from hakeeper.instanceha.nova import Nova, NovaError, Service

KEYS = st.Keys("t")


class SimNova:
    """The Nova class's interface over the simulation's fake Nova (errors as NovaError)."""

    def __init__(self, fake: FakeNova) -> None:
        self.fake = fake
        self.saved: dict[str, tuple[float, rc.NovaInstance | None]] = {}
        self.listings: list[float | None] = []  # each listing's changes-since (None: a full one)

    def _do(self, fn, *args):  # type: ignore[no-untyped-def]
        try:
            return fn(*args)
        except Refused as exc:
            raise NovaError(str(exc), exc.permanent, exc.unsure) from exc

    def service(self, host: str) -> Service:
        return Service("id", host, "down", "enabled", host in self.fake.forced, str(self.fake.updated.get(host, 0)))

    def unforce(self, host: str) -> None:
        self._do(self.fake.unforce, host)

    def warm_up(self) -> None:
        self.fake.warmed = True

    def force_down(self, host: str) -> str:
        return str(self._do(self.fake.force_down, host))

    def on_host(self, host: str, tag: str, key: str) -> list[rc.NovaInstance]:
        return list(self._do(self.fake.on_host, host))

    def instances(self, ids: set[str], tag: str, key: str, since: float | None = None) -> dict[str, rc.NovaInstance]:
        """Every instance asked for, or with `since` only those whose row changed since then (as
        Nova's changes-since: a row is stamped when Nova saves it, here when a listing sees it
        changed, the only moment the fake Nova moves)."""
        self.fake.progress()
        now = time.time()
        rows = {i: self.fake.view(self.fake.servers[i]) for i in ids}
        for i, row in rows.items():
            if self.saved.get(i, (0.0, None))[1] != row:
                self.saved[i] = (now, row)
        self.listings.append(since)
        return {i: row for i, row in rows.items() if since is None or self.saved[i][0] >= since}

    def evacuations(self, iid: str, since: float) -> int:
        return self.fake.servers[iid].evacuations

    def evacuation_status(self, iid: str, since: float) -> str:
        return self.fake.servers[iid].migration

    def evacuate(self, iid: str, target: str) -> None:
        self._do(self.fake.send, iid, target, time.time())


async def _cluster(store: MemoryStore, fake: FakeNova) -> Engine:
    await store.put(KEYS.member("ctl"), b"{}")
    await store.put(KEYS.fence + "c1", st.dumps({"ok": True, "at": 1.0}))
    fake.fenced.add("c1")
    return Engine(store, KEYS, "ctl", lambda: SimNova(fake), Settings(computes=frozenset({"c1"})), Options())  # type: ignore[arg-type,return-value]


async def _on_c1(n: int) -> tuple[MemoryStore, FakeNova, Engine]:
    """A store, a fake Nova with `n` instances on c1 (fenced), and an engine over them."""
    store = MemoryStore()
    fake = FakeNova(hosts=["c1", "c2"], up={"c2"})
    for i in range(n):
        fake.servers[f"vm{i}"] = Server(f"vm{i}", "c1")
    return store, fake, await _cluster(store, fake)


async def _rounds(engine: Engine, n: int) -> None:
    for _ in range(n):
        await engine.round()
        await asyncio.sleep(0.01)
        while engine.tasks:
            await asyncio.gather(*engine.tasks)


def test_engine_recovers_a_fenced_host_and_tells_each_step() -> None:
    async def main() -> None:
        store, fake, engine = await _on_c1(5)
        await _rounds(engine, 8)
        [(rec, _)] = (await read_recoveries(store, KEYS)).values()
        assert rec.phase == Phase.DONE and rec.count(InstanceState.EVACUATED) == 5
        assert [s.evacuations for s in fake.servers.values()] == [1] * 5 and fake.violations == []
        kvs, _ = await store.get_prefix(KEYS.events)
        kinds = [json.loads(kv.value)["kind"] for kv in kvs]
        for kind in ("recovery-started", "forced-down", "instances-listed", "evacuated", "recovery-done"):
            assert kind in kinds
        # The host boots again: a new member key, its nova-compute reporting: un-forced-down.
        await store.put(KEYS.member("c1"), b"{}")
        await _rounds(engine, 2)
        assert "c1" in fake.forced  # not before its nova-compute reported
        fake.updated["c1"] = 5
        await _rounds(engine, 2)
        [(rec, _)] = (await read_recoveries(store, KEYS)).values()
        assert rec.unforced and "c1" not in fake.forced

    asyncio.run(main())


def test_a_call_without_an_answer_is_left_to_novas_record_never_called_again() -> None:
    async def main() -> None:
        store = MemoryStore()
        fake = FakeNova(hosts=["c1", "c2"], up={"c2"}, hold_next=1)
        fake.servers["vm0"] = Server("vm0", "c1")
        engine = await _cluster(store, fake)
        engine.settings = Settings(computes=frozenset({"c1"}), claim_grace=0.3)
        await _rounds(engine, 4)  # begin, force down, list, the call: no answer
        [(rec, _)] = (await read_recoveries(store, KEYS)).values()
        assert rec.instances[0].state == InstanceState.CLAIMED and "no answer" in rec.instances[0].reason
        await _rounds(engine, 3)  # Nova has not got to it yet: within the grace, nothing is called
        assert fake.servers["vm0"].evacuations == 0
        fake.deliver(time.time(), everything=True)  # now Nova acts on it
        await asyncio.sleep(0.35)
        await _rounds(engine, 4)
        [(rec, _)] = (await read_recoveries(store, KEYS)).values()
        assert rec.phase == Phase.DONE and fake.servers["vm0"].evacuations == 1 and fake.violations == []
        kvs, _ = await store.get_prefix(KEYS.events)
        assert "evacuation-unanswered" in [json.loads(kv.value)["kind"] for kv in kvs]

    asyncio.run(main())


def test_first_attempts_go_out_in_rounds_without_a_listing() -> None:
    async def main() -> None:
        _store, fake, engine = await _on_c1(4)
        engine.settings = Settings(computes=frozenset({"c1"}), parallel=2)
        await _rounds(engine, 3)  # begin, force down, list
        engine.next_view = time.monotonic() + 60  # listings paused
        await _rounds(engine, 2)
        assert sum(s.evacuations for s in fake.servers.values()) == 4 and fake.violations == []

    asyncio.run(main())


def test_rounds_between_full_listings_ask_nova_only_for_what_changed() -> None:
    """Without a margin a changes-since listing returns only rows saved since the last listing:
    the merged view must still settle every instance (the ones not returned keep their rows)."""

    async def main() -> None:
        store, fake, engine = await _on_c1(12)
        nova = SimNova(fake)
        engine.nova_factory = lambda: nova  # type: ignore[assignment,return-value]
        engine.settings = Settings(computes=frozenset({"c1"}), parallel=3, in_progress=4)
        engine.options = Options(view_margin=0.0, full_view_every=3600.0)
        for _ in range(40):
            await _rounds(engine, 1)
            [(rec, _)] = (await read_recoveries(store, KEYS)).values()
            if rec.phase == Phase.DONE:
                break
        assert rec.phase == Phase.DONE and rec.count(InstanceState.EVACUATED) == 12
        assert [s.evacuations for s in fake.servers.values()] == [1] * 12 and fake.violations == []
        assert nova.listings[0] is None and sum(s is not None for s in nova.listings) >= 3

    asyncio.run(main())


class SlowListing(SimNova):
    """A Nova whose server listing takes longer than the engine's pacing threshold."""

    slow_listings = 0

    def instances(self, ids: set[str], tag: str, key: str, since: float | None = None) -> dict[str, rc.NovaInstance]:
        self.slow_listings += 1
        time.sleep(SLOW_VIEW * 1.2)
        return super().instances(ids, tag, key, since)


def test_a_slow_listing_is_not_asked_again_at_once_and_the_client_is_warmed_first() -> None:
    async def main() -> None:
        store = MemoryStore()
        fake = FakeNova(hosts=["c1", "c2"], up={"c2"})
        fake.servers["vm0"] = Server("vm0", "c1")
        nova = SlowListing(fake)
        engine = await _cluster(store, fake)
        engine.nova_factory = lambda: nova  # type: ignore[assignment,return-value]
        stop = asyncio.Event()
        stop.set()
        await engine.run(stop)  # no round, but the client is built and called once
        assert getattr(fake, "warmed", False)
        await _rounds(engine, 3)  # begin, force down, list: now evacuating
        await _rounds(engine, 1)
        assert nova.slow_listings == 1
        await _rounds(engine, 1)  # right after a slow listing: no listing, no decision
        assert nova.slow_listings == 1 and engine.next_view > time.monotonic()
        for _ in range(6):  # each round after the pause has its view
            await asyncio.sleep(max(0.0, engine.next_view - time.monotonic()))
            await _rounds(engine, 1)
        [(rec, _)] = (await read_recoveries(store, KEYS)).values()
        assert rec.phase == Phase.DONE and fake.servers["vm0"].evacuations == 1

    asyncio.run(main())


def test_a_host_step_overtaken_by_the_round_before_changes_nothing() -> None:
    """A round decides from a snapshot; a listing or force-down decided before the previous one
    landed must not reset instances already claimed (found by the benchmark: a second `unforced`)."""

    async def main() -> None:
        store = MemoryStore()
        fake = FakeNova(hosts=["c1", "c2"], up={"c2"})
        fake.servers["vm0"] = Server("vm0", "c1")
        engine = await _cluster(store, fake)
        await _rounds(engine, 3)  # begin, force down, list: evacuating, vm0 pending
        [((node, failure), (rec, _))] = (await read_recoveries(store, KEYS)).items()
        assert rec.phase == Phase.EVACUATING
        await engine.mutate((node, failure), lambda r: rc.claim(r, "vm0", "other-engine", "", 1.0))
        before = (await read_recoveries(store, KEYS))[(node, failure)][0]
        calls = len(fake.calls) if hasattr(fake, "calls") else None
        for step in (rc.ForceDown((node, failure), "c1"), rc.ListInstances((node, failure), "c1"),
                     rc.Unforce((node, failure), "c1")):
            assert not rc.still_due(before, step)
            await engine._host_step(step)
        after = (await read_recoveries(store, KEYS))[(node, failure)][0]
        assert after == before and after.instance("vm0").state == InstanceState.CLAIMED  # type: ignore[union-attr]
        assert calls is None or len(fake.calls) == calls

    asyncio.run(main())


def test_engine_without_membership_writes_nothing() -> None:
    async def main() -> None:
        store = MemoryStore()
        fake = FakeNova(hosts=["c1", "c2"], up={"c2"})
        fake.servers["vm0"] = Server("vm0", "c1")
        engine = await _cluster(store, fake)
        await store.delete(KEYS.member("ctl"))  # this node was cut off: its lease and member key went
        await _rounds(engine, 5)
        assert await read_recoveries(store, KEYS) == {} and not fake.forced and fake.servers["vm0"].evacuations == 0

    asyncio.run(main())


def test_unknown_compute_is_a_failed_recovery_not_a_crash() -> None:
    async def main() -> None:
        store = MemoryStore()
        fake = FakeNova(hosts=["c2"], up={"c2"})
        engine = await _cluster(store, fake)
        await _rounds(engine, 4)
        [(rec, _)] = (await read_recoveries(store, KEYS)).values()
        assert rec.phase == Phase.FAILED and "no nova-compute service on c1" in rec.reason

    asyncio.run(main())


# ----- the Nova edge against a broken endpoint -----


class Broken(http.server.BaseHTTPRequestHandler):
    status = 500

    def _answer(self) -> None:
        status = self.status
        doc: object = {"badRequest": {"message": f"refused ({status})", "code": status}}
        if self.command == "GET" and self.path.rstrip("/") in ("", "/v2.1"):
            # Version discovery answers, as Nova's root does: only the calls fail.
            href = f"http://127.0.0.1:{self.server.server_port}/v2.1/"
            version = {
                "id": "v2.1",
                "status": "CURRENT",
                "version": "2.95",
                "min_version": "2.1",
                "links": [{"rel": "self", "href": href}],
            }
            status, doc = 200, {"versions": [version]} if self.path.rstrip("/") == "" else {"version": version}
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken() -> Iterator[tuple[http.server.HTTPServer, type[Broken]]]:
    handler = type("Handler", (Broken,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, handler
    server.shutdown()
    server.server_close()


def _clouds(tmp_path, endpoint: str) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / "clouds.yaml"
    path.write_text(
        f"clouds:\n  lab:\n    auth_type: none\n    auth: {{endpoint: '{endpoint}'}}\n"
        f"    compute_endpoint_override: '{endpoint}'\n"
    )
    return str(path)


@pytest.mark.parametrize(
    ("status", "permanent", "words", "unsure"),
    [(401, False, "401", False), (404, True, "404", False), (400, False, "400", False), (500, False, "500", True)],
)
def test_nova_answers_become_reasons(tmp_path, broken, status: int, permanent: bool, words: str, unsure: bool) -> None:  # type: ignore[no-untyped-def]
    server, handler = broken
    handler.status = status
    nova = Nova.from_clouds_yaml(_clouds(tmp_path, f"http://127.0.0.1:{server.server_port}"), "lab", timeout=3)
    with pytest.raises(NovaError) as err:
        nova.evacuate("abc", "")
    assert words in err.value.reason and err.value.permanent == permanent
    assert err.value.unsure == unsure  # a refusal is an answer; a 500 may have come after Nova acted


def test_nova_that_does_not_answer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    nova = Nova.from_clouds_yaml(_clouds(tmp_path, "http://127.0.0.1:9"), "lab", timeout=3)
    with pytest.raises(NovaError) as err:
        nova.force_down("c1")
    assert "does not answer" in err.value.reason and not err.value.permanent


class Late(Broken):
    """Takes the evacuate call and answers after the client gave up: Nova goes on with a request
    whose client timed out, so the call may still be accepted."""

    posts = 0

    def do_POST(self) -> None:
        type(self).posts += 1
        time.sleep(1.5)
        self.status = 202
        self._answer()


def test_an_evacuate_call_answered_too_late_is_unsure_and_sent_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    handler = type("Handler", (Late,), {})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        nova = Nova.from_clouds_yaml(_clouds(tmp_path, f"http://127.0.0.1:{server.server_port}"), "lab", timeout=0.5)
        with pytest.raises(NovaError) as err:
            nova.evacuate("abc", "")
        assert err.value.unsure and "does not answer" in err.value.reason
        time.sleep(1.6)
        assert handler.posts == 1  # the client library sent it once (no retry of its own)
    finally:
        server.shutdown()
        server.server_close()


class Migrations(Broken):
    """Nova's migration records: an old evacuation of abc (an earlier failure), then this one's."""

    def do_GET(self) -> None:
        if not self.path.startswith("/v2.1/os-migrations"):
            return self._answer()
        assert "instance_uuid=abc" in self.path
        rows = [
            {"id": 1, "instance_uuid": "abc", "migration_type": "evacuation", "status": "done",
             "created_at": "2026-12-06T10:00:00.000000"},
            {"id": 7, "instance_uuid": "abc", "migration_type": "evacuation", "status": "pre-migrating",
             "created_at": "2026-12-06T12:00:05.000000"},
        ]
        body = json.dumps({"migrations": rows}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_the_status_of_the_latest_evacuation_since_the_failure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = http.server.HTTPServer(("127.0.0.1", 0), type("Handler", (Migrations,), {}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        nova = Nova.from_clouds_yaml(_clouds(tmp_path, f"http://127.0.0.1:{server.server_port}"), "lab", timeout=3)
        failure = calendar.timegm((2026, 12, 6, 12, 0, 0, 0, 0, 0))
        assert nova.evacuation_status("abc", failure) == "pre-migrating"
        assert nova.evacuation_status("abc", failure + 3600) == ""
    finally:
        server.shutdown()
        server.server_close()


def test_bad_clouds_yaml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NovaError) as err:
        Nova.from_clouds_yaml(_clouds(tmp_path, "http://127.0.0.1:9"), "no-such-cloud")
    assert "no-such-cloud" in err.value.reason and err.value.permanent


def test_bad_params() -> None:
    with pytest.raises(InputError):
        settings_from({"computes": "c1", "parallel": "many"})
    with pytest.raises(InputError):
        settings_from({"computes": "c1", "in_progress": "all"})
    assert settings_from({"computes": "c1"}).in_progress == 32
    assert settings_from({"computes": "c1", "in_progress": "0"}).in_progress == 0
    assert settings_from({"computes": "c1, c2", "host_map": "c1:h1"}).nova_host("c1") == "h1"


def test_recovery_commands_list_show_retry(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from hakeeper.instanceha.commands import _list, _retry, _show

    async def main() -> None:
        store = MemoryStore()
        fake = FakeNova(hosts=["c1", "c2"], up={"c2"}, refuse_next=10)
        fake.servers["vm0"] = Server("vm0", "c1", ha=True)
        engine = await _cluster(store, fake)
        await _rounds(engine, 8)
        await _list(argparse.Namespace(json=False), store, KEYS)
        await _show(argparse.Namespace(json=False, node="c1", failure=None), store, KEYS)
        out = capsys.readouterr().out
        assert "c1 failure" in out and "failed" in out and "No valid host" in out and "vm0 vm0 HA failed" in out
        fake.refuse_next = 0
        assert await _retry(argparse.Namespace(node="c1", failure=None), store, KEYS) == 0
        await _rounds(engine, 6)
        [(rec, _)] = (await read_recoveries(store, KEYS)).values()
        assert rec.phase == Phase.DONE and fake.servers["vm0"].rebuilds == 1
        with pytest.raises(InputError):
            await _show(argparse.Namespace(json=False, node="c9", failure=None), store, KEYS)

    asyncio.run(main())
