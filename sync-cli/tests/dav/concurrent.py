"""20 clients PUT and DELETE contacts concurrently for a bounded time, each on its own
keep-alive HTTPS connection verified against the Kith root; then checks that every
acknowledged write is there, nothing else is, no UID appears twice, and that the ctag
and sync tokens agree with what changed.

Usage: concurrent.py URL CA_FILE USER PASSWORD CLIENTS SECONDS
"""
import base64
import http.client
import random
import re
import ssl
import sys
import threading
import time
import urllib.parse

URL, CA, USER, PASSWORD = sys.argv[1:5]
CLIENTS, SECONDS = int(sys.argv[5]), float(sys.argv[6])
BOOK = f"/contacts/{USER}/default/"
AUTH = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def connect():
    host = urllib.parse.urlparse(URL)
    ctx = ssl.create_default_context(cafile=CA)
    return http.client.HTTPSConnection(host.hostname, host.port, context=ctx, timeout=60)


def request(conn, method, path, body=None, headers=None):
    h = {"Authorization": AUTH}
    h.update(headers or {})
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    return r.status, r.read().decode("utf-8", "replace"), r


def card(uid, n):
    return f"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{uid}\r\nFN:Person {uid} v{n}\r\nEND:VCARD\r\n"


def client(i, acked, failures):
    conn = connect()
    mine = {}
    rng = random.Random(i)
    deadline = time.time() + SECONDS
    n = 0
    while time.time() < deadline:
        n += 1
        if mine and rng.random() < 0.3:
            uid = rng.choice(sorted(mine))
            status, text, _ = request(conn, "DELETE", f"{BOOK}{uid}.vcf")
            if status == 204:
                del mine[uid]
            else:
                failures.append(f"DELETE {uid}: {status} {text}")
        else:
            uid = f"c{i}-{n}" if not mine or rng.random() < 0.7 else rng.choice(sorted(mine))
            body = card(uid, n)
            status, text, _ = request(conn, "PUT", f"{BOOK}{uid}.vcf", body.encode(),
                                      {"Content-Type": "text/vcard"})
            if status in (201, 204):
                mine[uid] = body
            else:
                failures.append(f"PUT {uid}: {status} {text}")
    acked[i] = mine


def propfind(conn, depth):
    body = '<propfind xmlns="DAV:"><prop><getetag/><sync-token/><getctag xmlns="http://calendarserver.org/ns/"/></prop></propfind>'
    status, text, _ = request(conn, "PROPFIND", BOOK, body.encode(), {"Depth": str(depth)})
    assert status == 207, (status, text)
    return text


def members(text):
    return sorted(re.findall(r"<d:href>" + re.escape(BOOK) + r"([^<]+)\.vcf</d:href>", text))


def sync(conn, token):
    body = (f'<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>'
            '<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>')
    status, text, _ = request(conn, "REPORT", BOOK, body.encode())
    assert status == 207, (status, text)
    changed, deleted = set(), set()
    for href, rest in re.findall(r"<d:href>([^<]+)</d:href>(.*?)</d:response>", text):
        name = href.rsplit("/", 1)[1][:-4]
        (deleted if "404 Not Found" in rest and "propstat" not in rest else changed).add(name)
    token = re.search(r"<d:sync-token>([^<]+)</d:sync-token>\s*</d:multistatus>", text).group(1)
    return changed, deleted, token


def main():
    check = connect()
    start_token = re.search(r"<d:sync-token>([^<]+)</d:sync-token>", propfind(check, 0)).group(1)
    acked, failures = {}, []
    threads = [threading.Thread(target=client, args=(i, acked, failures)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:10]
    expected = {uid: body for m in acked.values() for uid, body in m.items()}
    listing = propfind(check, 1)
    names = members(listing)
    assert len(names) == len(set(names)), "duplicate members"
    assert sorted(expected) == names, (len(expected), len(names))
    for uid, body in expected.items():
        status, text, _ = request(check, "GET", f"{BOOK}{uid}.vcf")
        assert status == 200 and text == body, (uid, status)
    changed, deleted, token = sync(check, start_token)
    assert changed == set(expected) and not deleted, "sync from the start token"
    ctag = re.search(r"<cs:getctag>([^<]+)</cs:getctag>", propfind(check, 0)).group(1)
    assert ctag == re.search(r"<cs:getctag>([^<]+)</cs:getctag>", propfind(check, 0)).group(1)
    victim = sorted(expected)[0]
    assert request(check, "DELETE", f"{BOOK}{victim}.vcf")[0] == 204
    assert request(check, "PUT", f"{BOOK}late.vcf", card("late", 0).encode())[0] == 201
    changed, deleted, _ = sync(check, token)
    assert changed == {"late"} and deleted == {victim}, (changed, deleted)
    new_ctag = re.search(r"<cs:getctag>([^<]+)</cs:getctag>", propfind(check, 0)).group(1)
    assert new_ctag != ctag
    writes = sum(len(m) for m in acked.values())
    print(f"consistent: {len(expected)} contacts from {CLIENTS} clients, {writes} live writes")


main()
