"""The python `caldav` library against the calendar image: `put` makes the calendar
`vm` when missing, saves one event and finds it with a time-range search (and nothing
in a range beside it); `get UID` finds the event UID with the same search, as after a
reboot. Exits non-zero, with the reason, when the search does not return the event.
The image's certificate names only dav.ZONE, so that name resolves to 127.0.0.1 here.

Usage: caldav_event.py URL CA_FILE USER PASSWORD put|get [UID]
"""
import datetime
import socket
import sys
import urllib.parse

import caldav

URL, CA, USER, PASSWORD, ACTION = sys.argv[1:6]
UID = sys.argv[6] if len(sys.argv) > 6 else "vm-event"
UTC = datetime.timezone.utc
EVENT = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//kith unikernel test//EN
BEGIN:VEVENT
UID:vm-event
DTSTAMP:20260101T000000Z
DTSTART:20260410T080000Z
DTEND:20260410T090000Z
SUMMARY:Booted and kept
END:VEVENT
END:VCALENDAR
"""

host = urllib.parse.urlsplit(URL).hostname
resolve = socket.getaddrinfo
socket.getaddrinfo = lambda name, *rest: resolve("127.0.0.1" if name == host else name, *rest)


def day(d):
    return datetime.datetime(2026, 4, d, tzinfo=UTC)


def uids(objects):
    return sorted(str(o.icalendar_instance.walk("VEVENT")[0]["UID"]) for o in objects)


client = caldav.DAVClient(url=URL, username=USER, password=PASSWORD, ssl_verify_cert=CA)
principal = client.principal()
calendars = [c for c in principal.calendars() if str(c.url).rstrip("/").endswith("/vm")]
if ACTION == "put":
    cal = calendars[0] if calendars else principal.make_calendar(name="VM", cal_id="vm")
    cal.save_event(EVENT)
else:
    assert calendars, f"no calendar vm among {principal.calendars()}"
    cal = calendars[0]
found = cal.date_search(day(10), day(11), expand=False)
assert uids(found) == [UID], f"10 April: {uids(found)}, not [{UID}]"
summary = found[0].icalendar_instance.walk("VEVENT")[0]["SUMMARY"]
assert summary == "Booted and kept", summary
beside = cal.date_search(day(11), day(12), expand=False)
assert beside == [], f"11 April: {uids(beside)}"
print("ok")
