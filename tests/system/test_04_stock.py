"""The stock service: reading levels, and the admin's PUT."""

import requests

from conftest import ADMIN_TOKEN

AUTH = {"Authorization": "Bearer " + ADMIN_TOKEN}


def test_get_inventory_and_one_sku(stock, make_sku):
    sku = make_sku(42)
    r = requests.get(stock.url + "/inventory", timeout=5)
    assert r.status_code == 200
    items = {i["sku"]: i["quantity"] for i in r.json()["inventory"]}
    assert items[sku] == 42
    r = requests.get(f"{stock.url}/inventory/{sku}", timeout=5)
    assert r.status_code == 200 and r.json() == {"sku": sku, "quantity": 42}


def test_unknown_and_invalid_sku(stock):
    assert requests.get(stock.url + "/inventory/nope-nope", timeout=5).status_code == 404
    r = requests.get(stock.url + "/inventory/" + "x" * 65, timeout=5)
    assert r.status_code == 400 and "sku" in r.json()["error"]


def test_put_needs_the_admin_token(stock, migrated, make_sku):
    sku = make_sku(3)
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"},
                    {"Authorization": "Basic " + ADMIN_TOKEN},
                    {"Authorization": "Bearer " + ADMIN_TOKEN + "x"}):
        r = requests.put(f"{stock.url}/inventory/{sku}", json={"quantity": 9},
                         headers=headers, timeout=5)
        assert r.status_code == 401, headers
        assert "error" in r.json()
    assert migrated.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0] == 3

    r = requests.put(f"{stock.url}/inventory/{sku}", json={"quantity": 9}, headers=AUTH,
                     timeout=5)
    assert r.status_code == 200 and r.json() == {"sku": sku, "quantity": 9}
    assert migrated.query("SELECT quantity FROM inventory WHERE sku = %s", (sku,))[0][0] == 9


def test_put_creates_a_new_product(stock, migrated):
    import uuid
    sku = "new-" + uuid.uuid4().hex[:8]
    r = requests.put(f"{stock.url}/inventory/{sku}", json={"quantity": 5}, headers=AUTH,
                     timeout=5)
    assert r.status_code == 201
    assert requests.get(f"{stock.url}/inventory/{sku}", timeout=5).json()["quantity"] == 5


def test_put_rejects_bad_quantities(stock, make_sku):
    sku = make_sku(3)
    for body in ('{"quantity": -1}', '{"quantity": "5"}', '{"quantity": 1.5}', '{}',
                 '{"quantity": 1000000001}', 'nope', '[]'):
        r = requests.put(f"{stock.url}/inventory/{sku}", data=body, timeout=5,
                         headers=dict(AUTH, **{"Content-Type": "application/json"}))
        assert r.status_code == 400, body
        assert r.json()["error"]


def test_wrong_method_is_405(stock):
    r = requests.post(stock.url + "/inventory", json={}, timeout=5)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
