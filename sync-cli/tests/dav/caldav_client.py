"""The python `caldav` library against Kith's CardDAV: it has no address-book classes,
so this uses what it has for any WebDAV server: its DAVClient (OPTIONS, PROPFIND,
PROPPATCH, PUT, REPORT, DELETE, principal discovery) with TLS verified against the root.

Usage: caldav_client.py URL CA_FILE USER PASSWORD
"""
import sys

import caldav
from caldav.elements import dav

URL, CA, USER, PASSWORD = sys.argv[1:5]
BOOK = f"{URL}contacts/{USER}/default/"
CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:py-{n}\r\nFN:Python {n}\r\nEND:VCARD\r\n"

client = caldav.DAVClient(url=URL, username=USER, password=PASSWORD, ssl_verify_cert=CA)
assert client.check_dav_support(), "DAV header"
principal = client.principal()
assert str(principal.url).endswith(f"/principals/{USER}/"), principal.url
r = client.propfind(str(principal.url), props='<propfind xmlns="DAV:"><prop><C:addressbook-home-set xmlns:C="urn:ietf:params:xml:ns:carddav"/></prop></propfind>', depth=0)
assert f"/contacts/{USER}/" in r.raw.decode(), r.raw
for n in (1, 2):
    r = client.put(f"{BOOK}py-{n}.vcf", CARD.format(n=n), {"Content-Type": "text/vcard"})
    assert r.status == 201, r.status
r = client.propfind(BOOK, props='<propfind xmlns="DAV:"><prop><getetag/><displayname/></prop></propfind>', depth=1)
assert r.status == 207 and "py-2.vcf" in r.raw.decode(), r.raw
r = client.proppatch(BOOK, '<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>From Python</D:displayname></D:prop></D:set></D:propertyupdate>')
assert r.status == 207, r.status
book = caldav.DAVObject(client=client, url=BOOK)
assert book.get_property(dav.DisplayName()) == "From Python"
multiget = ('<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
            f'<D:prop><C:address-data/></D:prop><D:href>/contacts/{USER}/default/py-1.vcf</D:href>'
            '</C:addressbook-multiget>')
r = client.report(BOOK, multiget, depth=None)
assert r.status == 207 and "FN:Python 1" in r.raw.decode(), r.raw
r = client.delete(f"{BOOK}py-2.vcf")
assert r.status == 204, r.status
print("ok")
