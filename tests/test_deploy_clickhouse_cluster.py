"""deploy/clickhouse/cluster/: the XML parses and describes what README says: two shards
of two replicas with internal_replication, one macros file per node with a unique
(shard, replica), three Keeper nodes with unique ids and the same Raft membership, and the
servers pointed at those Keepers. Not run here: no ClickHouse server or Keeper can be
installed, so replication and Keeper are not exercised."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

CLUSTER = Path(__file__).resolve().parent.parent / "deploy" / "clickhouse" / "cluster"


def test_two_shards_two_replicas_and_three_keepers():
    root = ET.parse(CLUSTER / "config.d" / "remote_servers.xml").getroot()
    shards = root.findall("remote_servers/pygate/shard")
    assert len(shards) == 2
    hosts = []
    for shard in shards:
        assert shard.findtext("internal_replication") == "true"
        replicas = shard.findall("replica")
        assert len(replicas) == 2
        hosts += [r.findtext("host") for r in replicas]
    assert len(set(hosts)) == 4

    macros = {}
    for path in sorted((CLUSTER / "macros").glob("*.xml")):
        m = ET.parse(path).getroot().find("macros")
        assert m.findtext("replica") == path.stem
        macros[path.stem] = (m.findtext("shard"), m.findtext("replica"))
    assert set(macros) == set(hosts)
    assert len(set(macros.values())) == 4
    for number, shard in enumerate(shards, 1):
        for replica in shard.findall("replica"):
            assert macros[replica.findtext("host")][0] == str(number)

    keepers = [
        ET.parse(p).getroot().find("keeper_server") for p in sorted(CLUSTER.glob("keeper-*.xml"))
    ]
    assert sorted(k.findtext("server_id") for k in keepers) == ["1", "2", "3"]
    members = {tuple(s.findtext(f) for f in ("id", "hostname", "port"))
               for s in keepers[0].findall("raft_configuration/server")}  # fmt: skip
    for k in keepers:
        got = {tuple(s.findtext(f) for f in ("id", "hostname", "port"))
               for s in k.findall("raft_configuration/server")}  # fmt: skip
        assert got == members and len(got) == 3
    zk = {(n.findtext("host"), n.findtext("port")) for n in root.findall("zookeeper/node")}
    assert zk == {(host, keepers[0].findtext("tcp_port")) for _, host, _ in members}
