"""Python's imaplib against the mail image: logs in over TLS (implicit, port 993),
verifying the certificate against the zone's root under the name mail.ZONE, selects
INBOX and checks that the newest message ends with the bytes of MESSAGE_FILE, as sent
(the server puts its Received and Authentication-Results headers in front). Exits
non-zero, with the reason, when it does not.

Usage: imap_fetch.py PORT CA_FILE HOST USER PASSWORD MESSAGE_FILE
"""
import imaplib
import socket
import ssl
import sys

PORT, CA, HOST, USER, PASSWORD, MESSAGE = sys.argv[1:7]
context = ssl.create_default_context(cafile=CA)


class Imap(imaplib.IMAP4_SSL):
    """IMAP over TLS to 127.0.0.1:PORT under the certificate's name HOST."""

    def _create_socket(self, timeout):
        sock = socket.create_connection(("127.0.0.1", int(PORT)), timeout)
        return context.wrap_socket(sock, server_hostname=HOST)


imap = Imap(HOST, int(PORT), ssl_context=context, timeout=60)
imap.login(USER, PASSWORD)
status, counts = imap.select("INBOX")
if status != "OK" or int(counts[0]) < 1:
    sys.exit(f"INBOX is empty: {status} {counts}")
status, data = imap.fetch(counts[0].decode(), "(BODY.PEEK[])")
fetched = data[0][1]
sent = open(MESSAGE, "rb").read()
imap.logout()
if not fetched.endswith(sent):
    sys.exit(f"the fetched message does not end with the one sent:\n{fetched[-300:]!r}")
print("ok")
