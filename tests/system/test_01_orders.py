"""POST /orders and GET /orders/{id}: success, out of stock, every bad input."""

import json
import uuid

import pytest
import requests

from conftest import events_for, read_topic, wait_for, unsent_outbox


def post(sales, body, headers=None, raw=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    data = raw if raw is not None else json.dumps(body)
    return requests.post(sales.url + "/orders", data=data, headers=h, timeout=10)


def stock_of(pg, sku):
    return pg.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0]


def test_order_success_commits_row_stock_and_event(sales, migrated, broker, make_sku):
    sku = make_sku(10)
    r = post(sales, {"sku": sku, "quantity": 3, "customer": "ann"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "completed"
    assert body["sku"] == sku and body["quantity"] == 3 and body["remaining"] == 7
    uuid.UUID(body["order_id"])
    assert r.headers["Content-Type"].startswith("application/json")

    assert stock_of(migrated, sku) == 7
    rows = migrated.query("SELECT sku, quantity, status, customer, remaining FROM orders "
                          "WHERE id = %s", (body["order_id"],))
    assert rows == [(sku, 3, "completed", "ann", 7)]

    recs = read_topic(broker, "orders",
                      until=lambda rs: events_for(rs, "order_id", [body["order_id"]]),
                      settle=0.5)
    [ev] = events_for(recs, "order_id", [body["order_id"]])
    assert ev["key"] == sku
    h = ev["headers"]
    assert h["ce_type"] == "order.completed"
    assert h["ce_specversion"] == "1.0"
    assert h["ce_source"] == "/dozen/sales"
    assert h["content-type"] == "application/json"
    uuid.UUID(h["ce_id"])
    assert h["ce_time"].endswith("Z") and "T" in h["ce_time"]
    assert ev["value"]["sku"] == sku and ev["value"]["quantity"] == 3
    assert ev["value"]["remaining"] == 7

    wait_for(lambda: unsent_outbox(migrated) == 0, 10, "the outbox to be marked sent")

    g = requests.get(f"{sales.url}/orders/{body['order_id']}", timeout=5)
    assert g.status_code == 200
    assert g.json()["status"] == "completed" and g.json()["quantity"] == 3


def test_out_of_stock_answers_409_with_both_events(sales, migrated, broker, make_sku):
    sku = make_sku(1)
    r = post(sales, {"sku": sku, "quantity": 2})
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["status"] == "out_of_stock"
    assert body["sku"] == sku and body["requested"] == 2 and body["available"] == 1
    assert body["restock_requested"] is True
    assert stock_of(migrated, sku) == 1
    assert migrated.query("SELECT status, available FROM orders WHERE id = %s",
                          (body["order_id"],)) == [("out_of_stock", 1)]

    recs = read_topic(broker, "orders",
                      until=lambda rs: events_for(rs, "order_id", [body["order_id"]]))
    [ev] = events_for(recs, "order_id", [body["order_id"]])
    assert ev["headers"]["ce_type"] == "order.rejected" and ev["key"] == sku

    recs = read_topic(broker, "stock.depleted",
                      until=lambda rs: events_for(rs, "order_id", [body["order_id"]]))
    [dep] = events_for(recs, "order_id", [body["order_id"]])
    assert dep["key"] == sku
    assert dep["headers"]["ce_type"] == "stock.depleted"
    assert dep["value"]["sku"] == sku
    assert dep["value"]["requested"] == 2 and dep["value"]["available"] == 1

    g = requests.get(f"{sales.url}/orders/{body['order_id']}", timeout=5)
    assert g.status_code == 200 and g.json()["status"] == "out_of_stock"


BAD_BODIES = [
    ('{"sku": "glazed", "quantity": 2', "malformed JSON"),
    ("", "empty"),
    ("[1, 2]", "JSON object"),
    ('"glazed"', "JSON object"),
    ('{"quantity": 2}', "sku"),
    ('{"sku": "SKU"}', "quantity"),
    ('{"sku": 12, "quantity": 2}', "sku"),
    ('{"sku": "SKU", "quantity": "2"}', "quantity"),
    ('{"sku": "SKU", "quantity": 1.5}', "quantity"),
    ('{"sku": "SKU", "quantity": 2.0}', "quantity"),
    ('{"sku": "SKU", "quantity": true}', "quantity"),
    ('{"sku": "SKU", "quantity": null}', "quantity"),
    ('{"sku": "SKU", "quantity": 0}', "between 1 and 1000"),
    ('{"sku": "SKU", "quantity": -1}', "between 1 and 1000"),
    ('{"sku": "SKU", "quantity": 1001}', "between 1 and 1000"),
    ('{"sku": "SKU", "quantity": 99999999999999999999}', ""),
    ('{"sku": "", "quantity": 1}', "sku"),
    ('{"sku": "gl azed", "quantity": 1}', "sku"),
    ('{"sku": "' + "x" * 65 + '", "quantity": 1}', "sku"),
    ('{"sku": "SKU", "quantity": 1, "customer": 5}', "customer"),
    ('{"sku": "SKU", "sku": "SKU", "quantity": 1}', ""),
]


@pytest.mark.parametrize("raw,fragment", BAD_BODIES)
def test_bad_input_is_400_and_changes_nothing(sales, migrated, make_sku, raw, fragment):
    sku = make_sku(5)
    r = post(sales, None, raw=raw.replace("SKU", sku))
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert isinstance(err, str) and fragment in err
    assert stock_of(migrated, sku) == 5
    assert migrated.query("SELECT count(*) FROM orders WHERE sku = %s", (sku,))[0][0] == 0


def test_unknown_sku_is_404(sales, migrated):
    before = migrated.query("SELECT count(*) FROM orders")[0][0]
    r = post(sales, {"sku": "no-such-doughnut", "quantity": 1})
    assert r.status_code == 404
    assert "no-such-doughnut" in r.json()["error"]
    assert migrated.query("SELECT count(*) FROM orders")[0][0] == before


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_wrong_method_on_orders_is_405(sales, method):
    r = requests.request(method, sales.url + "/orders", timeout=5)
    assert r.status_code == 405
    assert "POST" in r.headers.get("Allow", "")
    assert "error" in r.json()


def test_post_on_an_order_is_405(sales):
    r = requests.post(f"{sales.url}/orders/{uuid.uuid4()}", json={}, timeout=5)
    assert r.status_code == 405 and "GET" in r.headers.get("Allow", "")


def test_body_over_16_kib_is_413(sales, migrated, make_sku):
    sku = make_sku(5)
    big = json.dumps({"sku": sku, "quantity": 1, "customer": "x" * (17 * 1024)})
    r = post(sales, None, raw=big)
    assert r.status_code == 413
    assert "error" in r.json()

    def chunks():
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000].encode()
    r = requests.post(sales.url + "/orders", data=chunks(), timeout=10,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert stock_of(migrated, sku) == 5


def test_unknown_path_and_bad_order_id(sales):
    r = requests.get(sales.url + "/nope", timeout=5)
    assert r.status_code == 404 and "error" in r.json()
    r = requests.get(sales.url + "/orders/not-a-uuid", timeout=5)
    assert r.status_code == 400 and "UUID" in r.json()["error"]
    r = requests.get(f"{sales.url}/orders/{uuid.uuid4()}", timeout=5)
    assert r.status_code == 404 and "error" in r.json()


def test_idempotency_key_returns_first_answer_and_changes_nothing(sales, migrated, broker,
                                                                  make_sku):
    sku = make_sku(10)
    key = "key-" + uuid.uuid4().hex
    first = post(sales, {"sku": sku, "quantity": 4}, {"Idempotency-Key": key})
    assert first.status_code == 201
    for _ in range(3):
        again = post(sales, {"sku": sku, "quantity": 4}, {"Idempotency-Key": key})
        assert again.status_code == 201
        assert again.json() == first.json()
    assert stock_of(migrated, sku) == 6
    assert migrated.query("SELECT count(*) FROM orders WHERE sku = %s", (sku,))[0][0] == 1

    # The same key with another request is refused, not replayed.
    other = post(sales, {"sku": sku, "quantity": 5}, {"Idempotency-Key": key})
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["error"]
    assert stock_of(migrated, sku) == 6

    # A different key is a new order.
    new = post(sales, {"sku": sku, "quantity": 4}, {"Idempotency-Key": key + "x"})
    assert new.status_code == 201 and new.json()["order_id"] != first.json()["order_id"]

    recs = read_topic(broker, "orders",
                      until=lambda rs: len(events_for(rs, "sku", [sku])) >= 2, settle=0.5)
    assert len(events_for(recs, "sku", [sku])) == 2


def test_idempotency_key_for_a_rejected_order(sales, migrated, make_sku):
    sku = make_sku(0)
    key = "k-" + uuid.uuid4().hex
    a = post(sales, {"sku": sku, "quantity": 1}, {"Idempotency-Key": key})
    b = post(sales, {"sku": sku, "quantity": 1}, {"Idempotency-Key": key})
    assert a.status_code == b.status_code == 409
    assert a.json() == b.json()
    assert migrated.query("SELECT count(*) FROM outbox WHERE msg_key = %s AND topic = "
                          "'stock.depleted'", (sku,))[0][0] == 1


def test_concurrent_requests_with_one_key_make_one_order(sales, migrated, make_sku):
    from concurrent.futures import ThreadPoolExecutor
    sku = make_sku(100)
    key = "c-" + uuid.uuid4().hex
    with ThreadPoolExecutor(16) as ex:
        answers = list(ex.map(lambda _: post(sales, {"sku": sku, "quantity": 1},
                                             {"Idempotency-Key": key}), range(32)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert stock_of(migrated, sku) == 99


@pytest.mark.parametrize("key", ["", "with space", "x" * 256, "caf\u00e9"])
def test_bad_idempotency_key_is_400(sales, make_sku, key):
    sku = make_sku(5)
    r = requests.post(sales.url + "/orders", json={"sku": sku, "quantity": 1}, timeout=5,
                      headers={"Idempotency-Key": key.encode("utf-8")})
    assert r.status_code == 400, r.text
    assert "Idempotency-Key" in r.json()["error"]
