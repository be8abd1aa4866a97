"""The real opensearch-py client against a running warden.

Usage: opensearch_py_client.py <base-url> <user> <password>
Runs the same scenario with HTTP Basic and with an API token minted for it;
exits non-zero (with the failing step) on any mismatch.
"""

import sys

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import AuthorizationException, NotFoundError


def check(condition, what) -> None:
    """An assertion that `python -O` (PYTHONOPTIMIZE) cannot strip."""
    if not condition:
        raise AssertionError(what)


def scenario(client: OpenSearch, index: str) -> None:
    info = client.info()
    check(info["cluster_name"] == "warden", info)
    client.indices.create(index=index)
    created = client.index(index=index, id="1", body={"title": "first", "level": "warn", "n": 1})
    check(created["result"] == "created", created)
    got = client.get(index=index, id="1")
    check(got["found"] and got["_source"]["title"] == "first", got)
    ok, errors = helpers.bulk(
        client,
        [{"_index": index, "_id": str(i), "_source": {"title": f"doc {i}", "level": "warn" if i % 2 else "info", "n": i}}
         for i in range(2, 12)],
    )
    check(ok == 10 and not errors, (ok, errors))
    result = client.search(
        index=index,
        body={
            "query": {"bool": {"filter": [{"term": {"level": "warn"}}], "must_not": [{"term": {"n": 1}}]}},
            "aggs": {"total": {"sum": {"field": "n"}}, "levels": {"terms": {"field": "level"}}},
            "size": 3,
            "sort": [{"n": {"order": "desc"}}],
        },
    )
    hits = result["hits"]
    check(hits["total"]["value"] == 5, hits)
    check([h["_source"]["n"] for h in hits["hits"]] == [11, 9, 7], hits)
    check(result["aggregations"]["total"]["value"] == 3 + 5 + 7 + 9 + 11, result["aggregations"])
    # The terms aggregation over the filtered hits: only `warn` is left...
    levels = [(b["key"], b["doc_count"]) for b in result["aggregations"]["levels"]["buckets"]]
    check(levels == [("warn", 5)], result["aggregations"])
    # ...and over the whole index: 6 `warn` (1, 3, 5, 7, 9, 11), 5 `info`.
    everything = client.search(index=index, body={"size": 0, "aggs": {"levels": {"terms": {"field": "level"}}}})
    levels = [(b["key"], b["doc_count"]) for b in everything["aggregations"]["levels"]["buckets"]]
    check(levels == [("warn", 6), ("info", 5)], everything["aggregations"])
    # Timestamps as ISO strings: date math in a range, calendar buckets,
    # paging through query-string parameters, an id that needs encoding.
    client.index(index=index, id="a b/c", body={"at": "2020-03-15T12:00:00+02:00", "n": 100})
    client.index(index=index, id="recent", body={"at": "2999-01-01T00:00:00Z", "n": 101}, refresh=True)
    encoded = client.get(index=index, id="a b/c")
    check(encoded["_id"] == "a b/c", encoded)
    dated = client.search(
        index=index,
        body={"query": {"range": {"at": {"lt": "now-1d/d"}}},
              "aggs": {"months": {"date_histogram": {"field": "at", "calendar_interval": "month"}}}},
    )
    check([h["_id"] for h in dated["hits"]["hits"]] == ["a b/c"], dated["hits"])
    buckets = dated["aggregations"]["months"]["buckets"]
    check([(b["key_as_string"], b["doc_count"]) for b in buckets] == [("2020-03-01T00:00:00.000Z", 1)], buckets)
    paged = client.search(index=index, body={"query": {"range": {"n": {"gte": 2}}}}, size=2, from_=1)
    check(len(paged["hits"]["hits"]) == 2 and paged["hits"]["total"]["value"] == 12, paged["hits"])
    deleted = client.delete(index=index, id="1")
    check(deleted["result"] == "deleted", deleted)
    try:
        client.get(index=index, id="1")
        raise AssertionError("deleted document still found")
    except NotFoundError:
        pass
    client.indices.delete(index=index)


def main() -> int:
    url, user, password = sys.argv[1:4]
    basic = OpenSearch(hosts=[url], http_auth=(user, password))
    scenario(basic, "py-basic")
    print("basic auth: ok")

    token = basic.transport.perform_request(
        "POST",
        "/_plugins/_security/api/apitokens",
        body={"name": "py-client", "duration_seconds": 600,
              "cluster_permissions": ["cluster_monitor", "cluster:monitor/main"],
              "index_permissions": [{"index_patterns": ["py-*"], "allowed_actions": ["indices_all"]}]},
    )["token"]
    keyed = OpenSearch(hosts=[url], headers={"Authorization": f"ApiKey {token}"})
    scenario(keyed, "py-token")
    try:
        keyed.index(index="elsewhere", id="1", body={})
        raise AssertionError("the API token wrote outside its permissions")
    except AuthorizationException:
        pass
    # Refused, and nothing was written: the index does not exist.
    try:
        found = basic.get(index="elsewhere", id="1")
        raise AssertionError(f"the refused write landed: {found}")
    except NotFoundError:
        pass
    check(not basic.indices.exists(index="elsewhere"), "the refused write created `elsewhere`")
    print("api token: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
