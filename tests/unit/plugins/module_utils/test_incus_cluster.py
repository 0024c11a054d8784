"""ClusterApi and fetch_all_instances over HTTP on a unix socket (fake Incus cluster), and the
cluster-certificate fetch over real TLS on loopback."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import threading
import socket

import pytest

from ansible_collections.containarium.fleet.plugins.module_utils.fleet_module import FleetError
from ansible_collections.containarium.fleet.plugins.module_utils.incus import (
    ClusterApi,
    IncusClient,
    decode_join_token,
    encode_join_token,
    fetch_all_instances,
    fetch_cluster_certificate,
)

from fake_incus_cluster import FakeCluster, serve


@pytest.fixture
def cluster(tmp_path):
    fake = FakeCluster(instances={"c1": "m1", "c2": "m2", "c3": "m2", "c4": "m3"})
    server = serve(fake, tmp_path / "incus.socket")
    yield fake, "unix:%s" % (tmp_path / "incus.socket")
    server.shutdown()
    server.server_close()


def api_for(endpoint):
    return ClusterApi(IncusClient(endpoint=endpoint))


def test_members_and_placement(cluster):
    fake, endpoint = cluster
    api = api_for(endpoint)
    assert [m["server_name"] for m in api.members()] == ["m1", "m2", "m3"]
    assert api.instances_by_member() == {"m1": ["c1"], "m2": ["c2", "c3"], "m3": ["c4"]}
    # all-projects listing goes out without the client's ?project= (Incus refuses the pair)
    listing = [url for method, url in fake.requests if url.startswith("/1.0/instances")]
    assert listing and all("project=" not in url for url in listing)


def test_token_is_issued_once_and_found_again(cluster):
    fake, endpoint = cluster
    api = api_for(endpoint)
    assert api.pending_tokens() == {}
    token = api.issue_token("m4")
    fields = decode_join_token(token)
    assert fields["server_name"] == "m4" and fields["secret"] == "s3cret-m4"
    op_id, again = api.pending_tokens()["m4"]
    assert again == token
    api.revoke_token(op_id)
    assert api.pending_tokens() == {}


def test_evacuate_moves_instances_and_restore(cluster):
    fake, endpoint = cluster
    api = api_for(endpoint)
    api.change_member_state("m2", "evacuate", timeout=10, mode="migrate")
    assert api.member("m2")["status"] == "Evacuated"
    assert "m2" not in api.instances_by_member()
    api.change_member_state("m2", "restore", timeout=10)
    assert api.member("m2")["status"] == "Online"
    assert ("POST", "/1.0/cluster/members/m2/state?project=default") in fake.requests


def test_remove_member_with_instances_is_an_api_error_unless_forced(cluster):
    fake, endpoint = cluster
    api = api_for(endpoint)
    with pytest.raises(FleetError, match="still has instances"):
        api.remove_member("m3", force=False, timeout=10)
    api.remove_member("m3", force=True, timeout=10)
    assert api.member("m3") is None


def test_update_member_keeps_other_fields(cluster):
    fake, endpoint = cluster
    api = api_for(endpoint)
    api.update_member("m1", {"failure_domain": "europe-west1-b"})
    member = api.member("m1")
    assert member["failure_domain"] == "europe-west1-b" and member["groups"] == ["default"]


def test_fetch_all_instances_is_one_request(cluster):
    fake, endpoint = cluster
    fake.requests.clear()
    instances = fetch_all_instances(endpoint)
    assert len(instances) == 4
    assert fake.requests == [("GET", "/1.0/instances?recursion=2&all-projects=true")]


def test_fetch_all_instances_fails_loudly(tmp_path):
    with pytest.raises(FleetError, match="cannot reach Incus"):
        fetch_all_instances("unix:%s" % (tmp_path / "missing.socket"))


def test_join_token_round_trip_and_garbage():
    fields = {"server_name": "m2", "fingerprint": "ab", "addresses": ["10.0.0.1:8443"], "secret": "x",
              "expires_at": "2030-01-01T00:00:00Z"}
    assert decode_join_token(encode_join_token(fields)) == fields
    with pytest.raises(FleetError, match="not an Incus join token"):
        decode_join_token("not a token")


@pytest.fixture
def tls_server(tmp_path):
    key, crt = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-days", "1", "-subj", "/CN=fake-cluster"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(crt), str(key))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept():
        while True:
            try:
                conn, _peer = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    threading.Thread(target=accept, daemon=True).start()
    der = ssl.PEM_cert_to_DER_cert(crt.read_text())
    yield "127.0.0.1:%d" % port, hashlib.sha256(der).hexdigest(), crt.read_text()
    listener.close()


def test_cluster_certificate_checked_against_token_fingerprint(tls_server):
    address, fingerprint, pem = tls_server
    got = fetch_cluster_certificate(["127.0.0.1:1", address], fingerprint)
    assert ssl.PEM_cert_to_DER_cert(got) == ssl.PEM_cert_to_DER_cert(pem)
    with pytest.raises(FleetError, match="does not match the join token"):
        fetch_cluster_certificate([address], "00" * 32)
