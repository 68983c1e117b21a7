"""Last of the Ray tests (files run in name order): the cluster shuts down cleanly."""

from __future__ import annotations


def test_the_cluster_shuts_down_cleanly(cluster):
    cluster.ensure_worker()
    assert len(cluster.node_ids()) == 2
    left = cluster.stop()
    names = {}
    for pid in left:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                names[pid] = f.read().replace(b"\0", b" ")[:160].decode(errors="replace")
        except OSError:
            pass
    assert not left, f"processes of the cluster still running after SIGTERM: {names}"
    assert cluster.head.returncode is not None
    assert all(w.returncode is not None for w in cluster.workers)
