"""The python `caldav` library against Kith's CalDAV: discovery, calendars made with
MKCALENDAR, events with recurrences and overrides, to-dos, time-range searches (also
expanded by the server), sync tokens and deletes, with TLS verified against the root.

Usage: caldav_calendar.py URL CA_FILE USER PASSWORD
"""
import datetime
import sys

import caldav

URL, CA, USER, PASSWORD = sys.argv[1:5]
UTC = datetime.timezone.utc

WEEKLY = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//py//EN
BEGIN:VEVENT
UID:standup
DTSTAMP:20260101T000000Z
DTSTART;TZID=Europe/Berlin:20260302T093000
DTEND;TZID=Europe/Berlin:20260302T094500
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10
SUMMARY:Standup
END:VEVENT
BEGIN:VEVENT
UID:standup
DTSTAMP:20260101T000000Z
RECURRENCE-ID;TZID=Europe/Berlin:20260316T093000
DTSTART;TZID=Europe/Berlin:20260317T150000
DTEND;TZID=Europe/Berlin:20260317T151500
SUMMARY:Standup (moved)
END:VEVENT
END:VCALENDAR
"""
ONCE = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//py//EN
BEGIN:VEVENT
UID:dentist
DTSTAMP:20260101T000000Z
DTSTART:20260410T080000Z
DTEND:20260410T090000Z
SUMMARY:Dentist
END:VEVENT
END:VCALENDAR
"""
TODO = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//py//EN
BEGIN:VTODO
UID:milk
DTSTAMP:20260101T000000Z
DUE:20260305T170000Z
SUMMARY:Buy milk
END:VTODO
END:VCALENDAR
"""


def day(y, m, d):
    return datetime.datetime(y, m, d, tzinfo=UTC)


def uids(objects):
    return sorted(o.icalendar_instance.walk("VEVENT")[0]["UID"] for o in objects)


client = caldav.DAVClient(url=URL, username=USER, password=PASSWORD, ssl_verify_cert=CA)
principal = client.principal()
assert str(principal.url).endswith(f"/principals/{USER}/"), principal.url
cal = principal.make_calendar(name="Work", cal_id="work")
assert [str(c.url) for c in principal.calendars()] == [str(cal.url)], principal.calendars()
assert cal.get_display_name() == "Work"
tasks = principal.make_calendar(name="Tasks", cal_id="tasks",
                                supported_calendar_component_set=["VTODO"])

cal.save_event(WEEKLY)
cal.save_event(ONCE)
tasks.save_todo(TODO)
try:
    tasks.save_event(ONCE)
    raise AssertionError("a VEVENT went into a VTODO-only calendar")
except caldav.lib.error.DAVError:
    pass

# The week of 16 March: the override moved the instance to Tuesday 17th.
found = cal.date_search(day(2026, 3, 16), day(2026, 3, 17), expand=False)
assert found == [], uids(found)
found = cal.date_search(day(2026, 3, 17), day(2026, 3, 18), expand=False)
assert uids(found) == ["standup"], uids(found)
# 4 May is past COUNT=10 (last Monday is 4 May? 2 Mar + 9 weeks = 4 May): included;
# 11 May is not.
assert uids(cal.date_search(day(2026, 5, 4), day(2026, 5, 5), expand=False)) == ["standup"]
assert cal.date_search(day(2026, 5, 11), day(2026, 5, 12), expand=False) == []
assert uids(cal.date_search(day(2026, 4, 1), day(2026, 4, 30), expand=False)) == ["dentist", "standup"]
# Expanded by the server: four Mondays from 2 March, the third moved to Tuesday.
expanded = cal.date_search(day(2026, 3, 1), day(2026, 3, 24), expand=True)
starts = sorted(e["DTSTART"].dt.astimezone(UTC).strftime("%m-%d %H:%M")
                for o in expanded for e in o.icalendar_instance.walk("VEVENT"))
assert starts == ["03-02 08:30", "03-09 08:30", "03-17 14:00", "03-23 08:30"], starts
todos = tasks.todos()
assert [t.icalendar_instance.walk("VTODO")[0]["SUMMARY"] for t in todos] == ["Buy milk"], todos
due = tasks.search(todo=True, start=day(2026, 3, 5), end=day(2026, 3, 6))
assert len(due) == 1, due

# Sync tokens: a change and a delete show up, nothing else.
first = cal.objects_by_sync_token(load_objects=False)
token = first.sync_token
assert len(list(first)) == 2
event = cal.event_by_uid("dentist")
event.icalendar_instance.walk("VEVENT")[0]["SUMMARY"] = "Dentist (new time)"
event.save()
changed = cal.objects_by_sync_token(sync_token=token, load_objects=True)
assert [str(o.url).rsplit("/", 1)[1] for o in changed] == [str(event.url).rsplit("/", 1)[1]]
token = changed.sync_token
cal.event_by_uid("standup").delete()
deleted = cal.objects_by_sync_token(sync_token=token, load_objects=False)
assert len(list(deleted)) == 1, list(deleted)
assert uids(cal.events()) == ["dentist"]
print("ok")
