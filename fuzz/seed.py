#!/usr/bin/env python3
"""Writes the seed inputs of every fuzz target into fuzz/seeds/<target>/
(not committed): from the test fixtures, OpenSearch's own REST tests
(tests/conformance), OpenSearch's security configuration
(/work/shared/opensearch-security-config when present), the examples'
manifests, the built test guests, and the literals of the unit and e2e
tests. scripts/fuzz.sh --seed runs it, then `cargo fuzz cmin` minimises
the seeds with what the fuzzers found into fuzz/corpus/<target>/.

The inputs' layouts are the checks' (host/src/fuzzing/*.rs)."""

import glob
import hashlib
import json
import os
import random
import struct
import sys

import yaml

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "fuzz", "seeds")
rng = random.Random(17)


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# tokens: structured (arbitrary); a mode byte, then random bytes.
for mode in range(4):
    for n in (8, 64, 256, 1024):
        put("tokens", bytes([mode]) + rng.randbytes(n))
for text in ("Basic YWRtaW46YWRtaW4=", "Basic OnBhc3M=", "Bearer eyJhbGciOiJub25lIn0.e30.", "ApiKey wdn_x"):
    put("tokens", bytes([3]) + text.encode())

# manifest: the examples' and the unit tests' manifests.
for path in glob.glob(os.path.join(ROOT, "examples", "*", "extension.toml")):
    put("manifest", read(path))
put("manifest", 'id = "a"\nversion = "1"\ncomponent = "a.wasm"\n')
put(
    "manifest",
    'id = "hc-2"\nname = "HC"\nversion = "0.1.0"\ndescription = "d\\nx"\ncomponent = "hc.wasm"\n'
    'capabilities = ["cluster", "warden:extension/scheduler@0.1.0", "files"]\n'
    "[limits]\nmemory_mib = 64\ncpu_ms = 100\ntimeout_ms = 1000\nmax_concurrency = 2\nqueue_timeout_ms = 5\nfiles_mib = 1\n"
    '[policy]\ncluster_permissions = ["cluster:monitor/health"]\n'
    '[[policy.index_permissions]]\nindex_patterns = [".ext-hc-2*", "logs-*", "/a.*/"]\nallowed_actions = ["read", "indices:data/write/index"]\n'
    '[[roles]]\nname = "hc-2_reader"\nextension_permissions = ["extension:hc-2/summaries", "schedule:hc-2", "extension:hc-2/*"]\n'
    'cluster_permissions = ["cluster_monitor"]\n'
    '[[routes]]\nmethod = "get"\npath = "/summaries/{name}/x"\ncluster_actions = ["indices:data/read/search"]\nindex_patterns = ["logs-*"]\n'
    '[[routes]]\nmethod = "POST"\npath = "/"\n'
    '[[jobs]]\nname = "nightly_1"\ncluster_actions = ["read"]\nindex_patterns = ["logs"]\n',
)

# component: a capability mask byte, then the component.
guests = os.path.join(ROOT, "target", "guests", "wasm32-wasip2", "release")
for name, mask in (("guest_no_exports", 0), ("guest_trap", 0x0F), ("guest_host_calls", 0x03), ("hello_world", 0)):
    path = os.path.join(guests, name + ".wasm")
    if os.path.exists(path):
        with open(path, "rb") as f:
            put("component", bytes([mask]) + f.read())
    else:
        print(f"seed.py: {path} is missing (build the test guests first)", file=sys.stderr)
put("component", b"\x0f\x00asm\x0d\x00\x01\x00")
put("component", b"\x00\x00asm\x01\x00\x00\x00")

# actions: `METHOD path`, then a newline and the body.
paths = [
    "GET /", "HEAD /", "GET /_cluster/health", "GET /_search", "POST /logs/_search", "GET /logs,metrics/_count",
    "POST /_refresh", "POST /logs/_doc", "PUT /logs/_doc/1", "PUT /logs/_create/a%2Fb", "GET /logs/_doc/%E2%82%AC",
    "HEAD /logs/_source/1", "DELETE /logs/_doc/1", "POST /logs/_update/1", "PUT /logs", "DELETE /logs-*",
    "GET /_all", "GET /%2Ewarden-security/_doc/x", "GET /.ext-hc_state/_search", "PUT /a%252Ab", "GET /logs%2C.warden/_search",
    "GET /logs/_search?size=1&from=2&_source=a,b&track_total_hits=true&rest_total_hits_as_int=true",
    "PUT /logs/_doc/1?if_seq_no=1&if_primary_term=1&refresh=wait_for&version=3&version_type=external",
]
for p in paths:
    put("actions", p)
put("actions", 'GET /_mget\n{"docs":[{"_index":"a","_id":"1","_source":false},{"_index":".warden-x","_id":2}]}')
put("actions", 'POST /logs/_mget\n{"ids":["1",2]}')
put("actions", 'GET /_msearch\n{"index":"logs"}\n{"query":{"match_all":{}}}\n{}\n{}\n{"index":["a","b*"]}\n{}\n')
put("actions", 'POST /logs/_msearch\n{"index":".warden%2A"}\n{}\n')
put("actions", 'POST /_bulk\n{"index":{"_index":"logs","_id":"1"}}\n{"a":1}\n{"delete":{"_index":".warden-jobs","_id":"x"}}\n')

# query: search bodies from OpenSearch's REST tests and the unit tests.
queries = [
    {"query": {"match_all": {}}},
    {"query": {"term": {"user": "ana"}}},
    {"query": {"term": {"_id": {"value": "d1"}}}},
    {"query": {"terms": {"tags": ["a", 7, True]}}},
    {"query": {"ids": {"values": ["d0", "d3"]}}},
    {"query": {"exists": {"field": "user.name"}}},
    {"query": {"match": {"title": "hello WORLD"}}},
    {"query": {"match": {"title": {"query": "again"}}}},
    {"query": {"range": {"n": {"gte": 1, "lt": 3}}}},
    {"query": {"range": {"at": {"gte": "now-100y/d", "lte": "2026-11-22||+1M/M"}}}},
    {"query": {"range": {"at": {"gt": "2026-11-22T10:15:30+01:00", "lt": "now"}}}},
    {"query": {"range": {"title": {"gte": "a", "lte": "z"}}}},
    {"query": {"bool": {"must": [{"term": {"ok": True}}], "should": [{"match": {"title": "x"}}], "must_not": {"term": {"n": 2.5}}}}},
    {"query": {"bool": {"filter": [{"range": {"n": {"gte": 2}}}], "must_not": [{"term": {"msg": "bulk"}}]}}},
    {"query": {"bool": {"should": [{"ids": {"values": ["d2"]}}, {"range": {"n": {"lte": 0}}}]}}},
    {"aggs": {"n": {"min": {"field": "n"}}, "x": {"max": {"field": "n"}}, "a": {"avg": {"field": "n"}}, "s": {"sum": {"field": "n"}}, "c": {"value_count": {"field": "tags"}}}},
    {"aggs": {"t": {"terms": {"field": "tags", "size": 2}, "aggs": {"m": {"max": {"field": "n"}}}}}},
    {"aggs": {"h": {"date_histogram": {"field": "at", "calendar_interval": "1M"}}}},
    {"aggs": {"h": {"date_histogram": {"field": "at", "fixed_interval": "1d"}, "aggregations": {"u": {"terms": {"field": "user.name"}}}}}},
    {"query": {"match": {"title": "hello"}}, "aggs": {"by": {"terms": {"field": "title"}}}},
]
for q in queries:
    put("query", json.dumps(q))
for path in glob.glob(os.path.join(ROOT, "tests", "conformance", "*", "*.yml")):
    for doc in yaml.safe_load_all(read(path)):
        for steps in (doc or {}).values():
            for step in steps if isinstance(steps, list) else []:
                call = (step or {}).get("do") or {}
                for api, args in call.items():
                    body = (args or {}).get("body") if isinstance(args, dict) else None
                    if api in ("search", "count") and isinstance(body, dict):
                        put("query", json.dumps(body))
                    if api == "bulk" and isinstance(body, list):
                        put("bulk", b"\x00" + "\n".join(json.dumps(line) for line in body).encode() + b"\n")
                    if api == "bulk" and isinstance(body, str):
                        put("bulk", b"\x01" + body.encode())

# dates: two instants (i64), a unit byte, then text.
def dates(now1, now2, unit, text):
    put("dates", struct.pack("<qqB", now1, now2, unit) + text.encode())

for text in ("2026-11-22", "2026-11-22T10:15:30Z", "2026-11-22T10:15:30.123+01:00", "2026-02-29", "1970-01-01T00:00",
             "-1h/d", "+1M/M", "/w", "-3y+2M-1w/q", "2026-11-22||+1M/M", "2026-01-31||+1M", "+1d/d-1s", "0000-01-01",
             "273999999-12-31", "now", "2024-02-29T23:59:60-18:00"):
    dates(1_764_000_000_000, 1_764_086_400_000, 5, text)
dates(-8_640_000_000_000_000, 8_640_000_000_000_000, 7, "/y")

# schedule: now (u64), a kind byte (0 once, 1 interval, 2 cron, 3 JSON), then its data.
def sched(now, kind, rest):
    put("schedule", struct.pack("<QB", now, kind) + rest)

sched(1_764_000_000_000, 0, struct.pack("<Q", 1_764_000_060_000))
sched(1_764_000_000_000, 1, struct.pack("<Q", 60))
for expr in ("*/5 * * * *", "0 0 29 2 *", "30 2 * 3 sun", "0 0 1,15 * mon-fri", "@hourly", "@yearly", "59 23 31 dec 7",
             "0-59/7 1-23/3 */2 JAN-jun 1-5", "0 0 13 * 5"):
    sched(1_764_000_000_000, 2, b"\x00" + expr.encode())
    sched(1_764_000_000_000, 2, bytes([130 + rng.randrange(8)]) + expr.encode())
for js in ({"cron": "30 2 * * *", "timezone": "Europe/Berlin"}, {"interval": 86400}, {"once": 0}, {"cron": "0 0 1 1 *"}):
    sched(4_102_444_800_000, 3, json.dumps(js).encode())

# security_config: the import body, from every configuration at hand.
dirs = [os.path.join(ROOT, "tests", "fixtures", d) for d in ("opensearch-demo", "authz")]
dirs += ["/work/shared/opensearch-security-config", "/work/shared/opensearch-security-config/extension-demo"]
for d in dirs:
    files = {}
    for name in ("internal_users.yml", "roles.yml", "roles_mapping.yml", "action_groups.yml", "config.yml"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            files[name] = read(p)
            put("security_config", bytes([("internal_users.yml", "roles.yml", "roles_mapping.yml", "action_groups.yml", "config.yml").index(name)]) + files[name].encode())
    if files:
        put("security_config", json.dumps(files))

# bulk: a path byte, then NDJSON.
bulks = [
    '{"index":{"_index":"logs","_id":"1"}}\n{"a":1}\n{"create":{"_index":"logs"}}\n{"b":"x"}\n',
    '{"delete":{"_index":"logs","_id":"1"}}\n{"update":{"_index":"logs","_id":2}}\n{"doc":{"a":2}}\n',
    '{"index":{"_id":"x","if_seq_no":0,"if_primary_term":1}}\n{"f":1}\r\n\n{"index":{"op_type":"create","version":3,"version_type":"external"}}\n{}\n',
    '{"index":{"_index":".warden-security","_id":"admin"}}\n{"hash":"x"}\n',
    '{"index":{"_index":"a%2Eb"}}\n{}\n{"index":{"_index":"UPPER"}}\n{}\n',
    '{"index":{}}\n[1]\n{"index":{"_index":"logs","_id":""}}\n{"a":1}\n',
]
for i, b in enumerate(bulks):
    put("bulk", bytes([i]) + b.encode())
print("seeds written to", OUT)
