"""Bad HTTP input on every endpoint of every service (issue 11): a 4xx answer with a JSON
{"error": ...} body, never a 5xx, a hang or a crash.

Requests are written on a raw socket, so that anything can be sent: a NUL or a bad escape
in the path, bytes that are not UTF-8, unknown methods, oversize headers, lying lengths.
Each case names the service, what is sent and which 4xx statuses are right; every case
also checks that the service is still alive and ready afterwards (at the end of the module).
"""

import json
import socket
import uuid

import pytest
import requests

from conftest import ADMIN_TOKEN, Stack, wait_assigned

AUTH = f"Authorization: Bearer {ADMIN_TOKEN}"
UUID = "0b5d7e2c-5a7e-4a39-9a3e-6f1b1c2d3e4f"
PHONE = "+15551234567"


@pytest.fixture(scope="module")
def services(migrated, broker, workdir):
    s = Stack(migrated, broker, workdir)
    try:
        legacy = s.legacy_factory().start()
        feed = s.open_data().start()
        gateway = s.sms_gateway().start()
        svcs = {
            "sales": s.sales().start(),
            "stock": s.stock().start(),
            "factory": s.factory(legacy).start(),
            "notifier": s.notifier(feed, gateway).start(),
            "retry": s.retry().start(),
        }
        for name in ("stock", "factory", "notifier"):
            wait_assigned(svcs[name])
        yield svcs
        for name, svc in svcs.items():
            assert svc.alive(), f"{name} died:\n{svc.log()[-4000:]}"
    finally:
        failures = s.stop_all()
    assert not failures, "\n".join(failures)


def raw(port, data, timeout=10):
    """Sends data as is and returns (status, headers, body bytes) of the answer; the
    connection is closed by us after one answer. A hang fails (socket timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed without an answer; got {buf!r}")
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, headers, body[:n]


def request(method, target, headers=(), body=None, version="HTTP/1.1", content_length=None):
    """The bytes of one request; body may be bytes or a JSON-able value."""
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    lines = [f"{method} {target} {version}".encode("latin-1") if isinstance(target, str)
             else method.encode() + b" " + target + b" " + version.encode()]
    lines.append(b"Host: 127.0.0.1")
    lines.append(b"Connection: close")
    for h in headers:
        lines.append(h.encode("latin-1") if isinstance(h, str) else h)
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}".encode())
    elif body is not None:
        lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


JSON = "Content-Type: application/json"
FORM = "Content-Type: application/x-www-form-urlencoded"
DELIVERY = f"/deliveries/{UUID}?token=" + "0" * 64  # a capability of the right form, unknown
BIG_BODY = b'{"sku": "' + b"a" * (20 * 1024) + b'", "quantity": 1}'
DEEP = b"[" * 5000 + b"]" * 5000
BIG_HEADER = "X-Big: " + "b" * (20 * 1024)
LONG_SKU = "s" * 300

# (service, what, raw request, statuses that are right)
CASES = [
    # sales: POST /orders
    ("sales", "order: not JSON", request("POST", "/orders", [JSON], b"sku=x&quantity=1"), {400}),
    ("sales", "order: empty body", request("POST", "/orders", [JSON], b""), {400}),
    ("sales", "order: an array", request("POST", "/orders", [JSON], []), {400}),
    ("sales", "order: sku a number", request("POST", "/orders", [JSON],
                                             {"sku": 5, "quantity": 1}), {400}),
    ("sales", "order: quantity a string", request("POST", "/orders", [JSON],
                                                  {"sku": "x", "quantity": "1"}), {400}),
    ("sales", "order: negative quantity", request("POST", "/orders", [JSON],
                                                  {"sku": "x", "quantity": -1}), {400}),
    ("sales", "order: quantity 1e30", request("POST", "/orders", [JSON],
                                              b'{"sku": "x", "quantity": 1e30}'), {400}),
    ("sales", "order: quantity past int64", request("POST", "/orders", [JSON],
                                                    b'{"sku": "x", "quantity": 99999999999999999999}'),
     {400}),
    ("sales", "order: body not UTF-8", request("POST", "/orders", [JSON],
                                               b'{"sku": "\xff\xfe", "quantity": 1}'), {400}),
    ("sales", "order: sku with a NUL escape", request("POST", "/orders", [JSON],
                                                      b'{"sku": "a\\u0000b", "quantity": 1}'),
     {400}),
    ("sales", "order: nested 5000 deep", request("POST", "/orders", [JSON], DEEP), {400}),
    ("sales", "order: body over 16 KiB", request("POST", "/orders", [JSON], BIG_BODY), {413}),
    ("sales", "order: no Content-Type, not JSON", request("POST", "/orders", [], b"{oops"),
     {400}),
    ("sales", "order: chunked body over 16 KiB",
     request("POST", "/orders", [JSON, "Transfer-Encoding: chunked"],
             b"%x\r\n" % len(BIG_BODY) + BIG_BODY + b"\r\n0\r\n\r\n"), {413}),
    ("sales", "orders: unknown method BREW", request("BREW", "/orders"), {405}),
    ("sales", "orders: DELETE", request("DELETE", "/orders"), {405}),
    ("sales", "order id: not a UUID", request("GET", "/orders/not-a-uuid"), {400, 404}),
    ("sales", "order id: bad percent-encoding", request("GET", "/orders/%ZZ"), {400}),
    ("sales", "order id: encoded NUL", request("GET", "/orders/a%00b"), {400}),
    ("sales", "order id: encoded slash", request("GET", "/orders/a%2Fb"), {400}),
    ("sales", "order id: not UTF-8", request("GET", "/orders/%FF%FE"), {400, 404}),
    ("sales", "order id: 5000 characters", request("GET", "/orders/" + "a" * 5000), {400, 404}),
    ("sales", "path: 20 segments", request("GET", "/orders" + "/x" * 20), {404}),
    ("sales", "path: unknown", request("GET", "/nope"), {404}),
    ("sales", "path: absolute URI", request("GET", "http://127.0.0.1/orders"), {400, 404}),
    ("sales", "path: asterisk", request("OPTIONS", "*"), {400, 404}),
    ("sales", "path: raw control byte", request("GET", b"/orders/\x01x"), {400}),
    ("sales", "path: raw byte not UTF-8", request("GET", b"/orders/\xff"), {400}),
    ("sales", "orders: HEAD", request("HEAD", "/orders"), {405}),
    ("sales", "order: Expect 100-continue, too large",
     request("POST", "/orders", [JSON, "Expect: 100-continue"], content_length=10 ** 6),
     {413}),
    ("sales", "200 small headers", request("GET", "/nope", [f"X-H{i}: v" for i in range(200)]),
     {404}),
    ("sales", "no Host on HTTP/1.1", b"GET /readyz HTTP/1.1\r\nConnection: close\r\n\r\n",
     {400}),
    ("sales", "headers over 16 KiB", request("GET", "/orders/" + UUID, [BIG_HEADER]), {431}),
    ("sales", "query: bad escape", request("GET", f"/orders/{UUID}?x=%ZZ"), {400, 404}),
    # stock
    ("stock", "inventory sku: not UTF-8", request("GET", "/inventory/%C3%28"), {400, 404}),
    ("stock", "inventory sku: 300 characters", request("GET", "/inventory/" + LONG_SKU),
     {400, 404}),
    ("stock", "inventory sku: encoded NUL", request("GET", "/inventory/a%00"), {400}),
    ("stock", "inventory: PATCH", request("PATCH", "/inventory/x"), {405}),
    ("stock", "set level: no token", request("PUT", "/inventory/x", [JSON], {"quantity": 1}),
     {401}),
    ("stock", "set level: wrong token", request("PUT", "/inventory/x",
                                                [JSON, "Authorization: Bearer nope"],
                                                {"quantity": 1}), {401}),
    ("stock", "set level: quantity a string", request("PUT", "/inventory/x", [JSON, AUTH],
                                                      {"quantity": "ten"}), {400}),
    ("stock", "set level: negative", request("PUT", "/inventory/x", [JSON, AUTH],
                                             {"quantity": -5}), {400}),
    ("stock", "set level: not an object", request("PUT", "/inventory/x", [JSON, AUTH],
                                                  b'"five"'), {400}),
    ("stock", "set level: sku not UTF-8", request("PUT", "/inventory/%FF", [JSON, AUTH],
                                                  {"quantity": 1}), {400, 404}),
    ("stock", "set level: sku too long", request("PUT", "/inventory/" + LONG_SKU, [JSON, AUTH],
                                                 {"quantity": 1}), {400, 404}),
    # factory
    # POST /deliveries/{id}?token=: without the order's capability a 404, whatever the body
    ("factory", "delivery: not JSON", request("POST", DELIVERY, [JSON], b"<xml/>"), {400, 404}),
    ("factory", "delivery: wrong types", request("POST", DELIVERY, [JSON],
                                                 {"MessageAttributeProductId": 1,
                                                  "MessageAttributeProductCnt": []}),
     {400, 404}),
    ("factory", "delivery: not UTF-8", request("POST", DELIVERY, [JSON],
                                               b'{"MessageAttributeProductId": "\xc3\x28"}'),
     {400, 404}),
    ("factory", "delivery: token not UTF-8", request("POST", f"/deliveries/{UUID}?token=%FF",
                                                     [JSON], {"MessageAttributeProductId": "f",
                                                              "MessageAttributeProductCnt": 1}),
     {404}),
    ("factory", "delivery: no token", request("POST", f"/deliveries/{UUID}", [JSON],
                                              {"MessageAttributeProductId": "f",
                                               "MessageAttributeProductCnt": 1}), {404}),
    ("factory", "delivery: id not a UUID", request("POST", "/deliveries/7?token=" + "0" * 64,
                                                   [JSON], {}), {404}),
    ("factory", "deliveries: GET", request("GET", "/deliveries/" + str(uuid.uuid4())), {405}),
    ("factory", "orders: status unknown", request("GET", "/production-orders?status=bogus"),
     {400}),
    ("factory", "orders: sku not UTF-8", request("GET", "/production-orders?sku=%FF"),
     {400}),
    ("factory", "orders: sku too long", request("GET", "/production-orders?sku=" + LONG_SKU),
     {400}),
    ("factory", "order id: not a number", request("GET", "/production-orders/abc"),
     {400, 404}),
    ("factory", "order id: 25 digits", request("GET", "/production-orders/" + "9" * 25),
     {400, 404}),
    ("factory", "order id: not UTF-8", request("GET", "/production-orders/%FF"), {400, 404}),
    # notifier
    ("notifier", "subscribe: no token", request("POST", "/subscribers", [JSON],
                                                {"phone": PHONE}), {401}),
    ("notifier", "subscribe: phone too short", request("POST", "/subscribers", [JSON, AUTH],
                                                       {"phone": "12"}), {400}),
    ("notifier", "subscribe: phone not UTF-8", request("POST", "/subscribers", [JSON, AUTH],
                                                       b'{"phone": "+1555\xff"}'), {400}),
    ("notifier", "subscribe: name a number", request("POST", "/subscribers", [JSON, AUTH],
                                                     {"phone": PHONE, "name": 5}), {400}),
    ("notifier", "subscribe: skus a string", request("POST", "/subscribers", [JSON, AUTH],
                                                     {"phone": PHONE, "skus": "x"}), {400}),
    ("notifier", "subscribe: unknown field", request("POST", "/subscribers", [JSON, AUTH],
                                                     {"phone": PHONE, "admin": True}), {400}),
    ("notifier", "subscribers: limit not a number",
     request("GET", "/subscribers?limit=abc", [AUTH]), {400}),
    ("notifier", "subscribers: negative offset",
     request("GET", "/subscribers?offset=-1", [AUTH]), {400}),
    ("notifier", "subscriber id: not a UUID", request("GET", "/subscribers/42", [AUTH]),
     {400, 404}),
    ("notifier", "subscriber sku: encoded NUL",
     request("PUT", f"/subscribers/{UUID}/skus/a%00", [AUTH]), {400}),
    ("notifier", "subscriber sku: not UTF-8",
     request("PUT", f"/subscribers/{UUID}/skus/%FF", [AUTH]), {400, 404}),
    ("notifier", "unsubscribe: id not UTF-8", request("DELETE", "/subscribers/%FF", [AUTH]),
     {400, 404}),
    ("notifier", "bulletin: month 13", request("GET", "/bulletins/2024-13-45"), {400, 404}),
    ("notifier", "bulletin: not a date", request("GET", "/bulletins/yesterday"), {400, 404}),
    ("notifier", "bulletin: date not UTF-8", request("GET", "/bulletins/%FF"), {400, 404}),
    ("notifier", "bulletin run: GET", request("GET", "/bulletins/run"), {400, 404, 405}),
    ("notifier", "headers over 16 KiB", request("GET", "/subscribers", [AUTH, BIG_HEADER]),
     {431}),
    # notifier, the public sign-up (signup_api.c): refused before any database or SMS
    ("notifier", "signup page: PUT", request("PUT", "/signup", [JSON], {"phone": PHONE}),
     {405}),
    ("notifier", "signup page: path under it", request("GET", "/signup/%FF"), {400, 404}),
    ("notifier", "signup products: POST", request("POST", "/signup/products", [JSON],
                                                  {"sku": "glazed"}), {405}),
    ("notifier", "signup products: DELETE", request("DELETE", "/signup/products"), {405}),
    ("notifier", "signup products: path under it", request("GET", "/signup/products/x"),
     {404}),
    ("notifier", "signup: not JSON", request("POST", "/signup", [JSON], b"phone=+15551234567"),
     {400}),
    ("notifier", "signup: empty body", request("POST", "/signup", [JSON], b""), {400}),
    ("notifier", "signup: phone a number", request("POST", "/signup", [JSON],
                                                   {"phone": 15551234567}), {400}),
    ("notifier", "signup: phone 40 digits", request("POST", "/signup", [JSON],
                                                    {"phone": "+1" + "5" * 39}), {400}),
    ("notifier", "signup: phone not UTF-8", request("POST", "/signup", [JSON],
                                                    b'{"phone": "+1555\xc3\x28"}'), {400}),
    ("notifier", "signup: skus a string", request("POST", "/signup", [JSON],
                                                  {"phone": PHONE, "skus": "glazed"}), {400}),
    ("notifier", "signup: unknown field", request("POST", "/signup", [JSON],
                                                  {"phone": PHONE, "active": False}), {400}),
    ("notifier", "signup: body over 16 KiB", request("POST", "/signup", [JSON],
                                                     {"phone": PHONE, "name": "n" * 20000}),
     {413}),
    ("notifier", "signup confirm: no code", request("POST", "/signup/confirm", [JSON],
                                                    {"phone": PHONE}), {400}),
    ("notifier", "signup confirm: code a number", request("POST", "/signup/confirm", [JSON],
                                                          {"phone": PHONE, "code": 123456}),
     {400}),
    ("notifier", "signup confirm: code letters", request("POST", "/signup/confirm", [JSON],
                                                         {"phone": PHONE, "code": "abcdef"}),
     {400}),
    ("notifier", "signup confirm: GET", request("GET", "/signup/confirm"), {405}),
    ("notifier", "unsubscribe: an array", request("POST", "/unsubscribe", [JSON], [PHONE]),
     {400}),
    ("notifier", "unsubscribe: extra field", request("POST", "/unsubscribe", [JSON],
                                                     {"phone": PHONE, "name": "x"}), {400}),
    ("notifier", "unsubscribe: phone missing", request("POST", "/unsubscribe", [JSON], {}),
     {400}),
    ("notifier", "unsubscribe confirm: phone not E.164",
     request("POST", "/unsubscribe/confirm", [JSON], {"phone": "5551234567",
                                                      "code": "123456"}), {400}),
    ("notifier", "unsubscribe confirm: nested 5000 deep",
     request("POST", "/unsubscribe/confirm", [JSON], DEEP), {400}),
    ("notifier", "sms inbound: bad escape", request("POST", "/sms/inbound", [FORM],
                                                    b"From=%ZZ&Body=STOP"), {400}),
    ("notifier", "sms inbound: encoded NUL", request("POST", "/sms/inbound", [FORM],
                                                     b"From=%2B1555%00&Body=STOP"), {400}),
    ("notifier", "sms inbound: no signature", request("POST", "/sms/inbound", [FORM],
                                                      b"From=%2B15551234567&Body=STOP"),
     {403}),
    ("notifier", "sms inbound: wrong signature",
     request("POST", "/sms/inbound", [FORM, "X-Twilio-Signature: 0/KCTR6DLpKmkAf8muzZqo1nDgQ="],
             b"From=%2B15551234567&Body=STOP"), {403}),
    ("notifier", "sms inbound: body not UTF-8", request("POST", "/sms/inbound", [FORM],
                                                        b"From=\xff\xfe&Body=\xc3\x28"),
     {403}),
    ("notifier", "sms inbound: body over 16 KiB",
     request("POST", "/sms/inbound", [FORM], b"&".join(b"k%04d=v" % i for i in range(3000))),
     {413}),
    ("notifier", "sms inbound: GET", request("GET", "/sms/inbound"), {405}),
    # retry
    ("retry", "stats: POST", request("POST", "/stats", [JSON], {}), {405}),
    ("retry", "stats: unknown path", request("GET", "/stats/x"), {404}),
    ("retry", "stats: query not UTF-8", request("GET", "/stats?group=%FF"), {200, 400}),
    ("retry", "readyz: DELETE", request("DELETE", "/readyz"), {405}),
    ("retry", "headers over 16 KiB", request("GET", "/stats", [BIG_HEADER]), {431}),
]


@pytest.mark.parametrize("name,what,data,ok", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_bad_input_gets_a_json_4xx(services, name, what, data, ok):
    svc = services[name]
    status, headers, body = raw(svc.port, data)
    assert status in ok, f"{what}: {status} {body[:300]!r}"
    if status >= 400:
        assert headers.get("content-type") == "application/json", (what, headers)
        if not data.startswith(b"HEAD "):  # an answer to HEAD has no body
            assert isinstance(json.loads(body).get("error"), str), (what, body)


# Framing errors are answered by libmicrohttpd itself, before any route sees the request:
# a 400 (its own short HTML page), never a 5xx or a hang.
FRAMING = [
    ("Content-Length of 20 digits",
     b"POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
     b"Content-Length: 99999999999999999999\r\n\r\n"),
    ("Content-Length not a number",
     b"POST /orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: abc\r\n\r\n"),
    ("header line without a colon",
     b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nno colon here\r\n\r\n"),
]


@pytest.mark.parametrize("what,data", FRAMING, ids=[f[0] for f in FRAMING])
def test_bad_framing_gets_a_4xx(services, what, data):
    status, _, _ = raw(services["sales"].port, data)
    assert 400 <= status < 500, what


def test_every_service_is_ready_after_all_of_it(services):
    for name, svc in services.items():
        r = requests.get(svc.url + "/readyz", timeout=5)
        assert r.status_code == 200, (name, r.text)
