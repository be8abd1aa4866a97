"""The document API as opensearch-py uses it, against a running warden.

Usage: opensearch_py_documents.py <base-url> <user> <password>
create conflicts, external versions, update with upserts and noops,
get_source, mget, msearch, helpers.bulk with a failing item,
helpers.scan (scroll) and search_after paging over every hit; exits
non-zero (with the failing step) on any mismatch.
"""

import sys

from opensearchpy import OpenSearch, helpers
from opensearchpy.exceptions import ConflictError, NotFoundError


def check(condition, what) -> None:
    """An assertion that `python -O` (PYTHONOPTIMIZE) cannot strip."""
    if not condition:
        raise AssertionError(what)


def main() -> int:
    url, user, password = sys.argv[1:4]
    client = OpenSearch(hosts=[url], http_auth=(user, password))
    index = "py-docs"

    created = client.create(index=index, id="1", body={"v": 1}, refresh=True)
    check(created["result"] == "created" and created.get("forced_refresh") is True, created)
    try:
        client.create(index=index, id="1", body={"v": "overwritten"})
        raise AssertionError("create overwrote an existing document")
    except ConflictError as e:
        check(e.error == "version_conflict_engine_exception", e.info)
    check(client.get_source(index=index, id="1") == {"v": 1}, "create changed the document")
    check(client.exists(index=index, id="1") and not client.exists(index=index, id="nope"), "exists")

    external = client.index(index=index, id="ext", body={"v": 5}, version=5, version_type="external")
    check(external["_version"] == 5, external)
    try:
        client.index(index=index, id="ext", body={"v": 4}, version=4, version_type="external")
        raise AssertionError("an older external version replaced a newer one")
    except ConflictError:
        pass

    upserted = client.update(index=index, id="2", body={"doc": {"a": 1}, "doc_as_upsert": True})
    check(upserted["result"] == "created", upserted)
    noop = client.update(index=index, id="2", body={"doc": {"a": 1}})
    check(noop["result"] == "noop", noop)
    try:
        client.update(index=index, id="missing", body={"doc": {"a": 1}})
        raise AssertionError("an update created a document without upsert")
    except NotFoundError as e:
        check(e.error == "document_missing_exception", e.info)
    seq = client.get(index=index, id="2")
    try:
        client.update(index=index, id="2", body={"doc": {"a": 2}},
                      if_seq_no=seq["_seq_no"] + 100, if_primary_term=seq["_primary_term"])
        raise AssertionError("a stale if_seq_no was written")
    except ConflictError:
        pass

    got = client.mget(body={"docs": [{"_index": index, "_id": "1"}, {"_index": index, "_id": "nope"}]})
    check([d["found"] for d in got["docs"]] == [True, False], got)
    got = client.mget(index=index, body={"ids": ["2", "1"]}, _source_includes="a")
    check(got["docs"][0]["_source"] == {"a": 1} and got["docs"][1]["_source"] == {}, got)

    searches = client.msearch(body=[
        {"index": index}, {"query": {"term": {"v": 1}}},
        {"index": "py-nope"}, {"query": {"match_all": {}}},
    ])
    responses = searches["responses"]
    check(responses[0]["hits"]["total"]["value"] == 1, responses)
    check(responses[1]["status"] == 404 and responses[1]["error"]["type"] == "index_not_found_exception", responses)

    actions = [
        {"_op_type": "create", "_index": index, "_id": "1", "_source": {"v": "bulk"}},
        {"_op_type": "index", "_index": index, "_id": "3", "_source": {"v": 3}},
    ]
    ok, errors = helpers.bulk(client, actions, raise_on_error=False, refresh=True)
    check(ok == 1 and len(errors) == 1, (ok, errors))
    check(errors[0]["create"]["status"] == 409, errors)
    check(client.get_source(index=index, id="1") == {"v": 1}, "the failed bulk create changed the document")
    check(client.get_source(index=index, id="3") == {"v": 3}, "the rest of the bulk was not applied")
    # helpers.scan: every document exactly once, through the scroll API
    # (it clears its scroll at the end); before, it silently yielded nothing.
    scan_index = "py-scan"
    helpers.bulk(client, ({"_index": scan_index, "_id": f"s{n:05}", "_source": {"n": n, "even": n % 2 == 0}}
                          for n in range(1234)), refresh=True)
    scanned = [hit["_id"] for hit in helpers.scan(client, index=scan_index, size=100)]
    check(len(scanned) == 1234 and len(set(scanned)) == 1234, f"scan yielded {len(scanned)} hits")
    evens = list(helpers.scan(client, index=scan_index, query={"query": {"term": {"even": True}}}, size=77))
    check(len(evens) == 617 and all(h["_source"]["even"] for h in evens), len(evens))
    ordered = [h["_source"]["n"] for h in helpers.scan(
        client, index=scan_index, query={"sort": [{"n": "desc"}]}, preserve_order=True, size=250)]
    check(ordered == list(range(1233, -1, -1)), "preserve_order scan out of order")
    # search_after paging with a sort and a tiebreaker.
    paged, after = [], None
    while True:
        body = {"size": 100, "sort": [{"even": "desc"}, {"n": "asc"}]}
        if after is not None:
            body["search_after"] = after
        hits = client.search(index=scan_index, body=body)["hits"]["hits"]
        if not hits:
            break
        paged.extend(h["_source"]["n"] for h in hits)
        after = hits[-1]["sort"]
    check(paged == list(range(0, 1234, 2)) + list(range(1, 1234, 2)), "search_after paging")
    print("documents: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
