"""Drives /rest/v1 with postgrest-py, the PostgREST client library Supabase's Python SDK uses.

Usage: python3 tests/rest_client.py <base_url>

The database is the seed of tests/it/rest.rs (users, orders, flags, other.things). Prints one line
per check and exits with status 1 when any check fails. Run by tests/it/rest.rs, which starts the
server and creates the database.
"""

import sys
import traceback

from postgrest import APIError, SyncPostgrestClient

failures = []


def check(name, fn):
    try:
        fn()
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - every failure is reported, then the run fails
        failures.append(name)
        print(f"FAIL {name}: {e!r}")
        traceback.print_exc(file=sys.stdout)


def equal(got, expected):
    assert got == expected, f"expected {expected!r}, got {got!r}"


def raises(fn, code):
    try:
        fn()
    except APIError as e:
        equal(e.code, code)
        return
    raise AssertionError(f"expected an APIError with code {code}")


def main(base):
    client = SyncPostgrestClient(
        base + "/rest/v1", headers={"X-Athena-Client": "default"}
    )
    users = lambda: client.from_("users")  # noqa: E731 - a fresh builder per query

    def select_filter_order_limit():
        r = users().select("id,name").gte("age", 25).order("age", desc=True).limit(2).execute()
        equal([row["name"] for row in r.data], ["Dee", "Ada"])

    def operators():
        names = lambda r: [row["name"] for row in r.data]  # noqa: E731
        equal(names(users().select("name").in_("name", ["Ada", "Cy", "a,b"]).order("id").execute()), ["Ada", "Cy"])
        equal(names(users().select("name").is_("age", "null").execute()), ["Cy"])
        equal(names(users().select("name").ilike("email", "%E@%").order("id").execute()), ["Dee", "Eve"])
        equal(names(users().select("name").or_("name.eq.Ada,age.lt.30").order("id").execute()), ["Ada", "Bob", "Eve"])
        equal(names(users().select("name").not_.eq("status", "active").order("id").execute()), ["Bob", "Dee"])
        equal(names(users().select("name").neq("name", "Ada").lt("age", 30).order("name", desc=True).execute()), ["Eve", "Bob"])

    def aliases_and_nulls_order():
        r = users().select("who:name").order("age", desc=True, nullsfirst=True).limit(1).execute()
        equal(r.data, [{"who": "Cy"}])

    def count_exact():
        r = users().select("id", count="exact").eq("status", "active").execute()
        equal((r.count, len(r.data)), (3, 3))
        r = users().select("id", count="exact").order("id").range(1, 2).execute()
        equal((r.count, [row["id"] for row in r.data]), (5, [2, 3]))

    def head_count():
        r = users().select("*", count="exact", head=True).gt("age", 30).execute()
        equal(r.count, 2)

    def single_row():
        r = users().select("name").eq("id", 1).single().execute()
        equal(r.data, {"name": "Ada"})
        raises(lambda: users().select("name").eq("age", 25).single().execute(), "PGRST116")
        equal(users().select("name").eq("id", 999).maybe_single().execute(), None)

    def arrays_and_json():
        r = client.from_("orders").select("total").contains("tags", ["blue"]).order("total").execute()
        equal([row["total"] for row in r.data], [5.5, 20.0])
        r = client.from_("orders").select("total").contains("meta", {"gift": True}).execute()
        equal([row["total"] for row in r.data], [20.0])

    def other_schema():
        r = client.schema("other").from_("things").select("label").order("id").execute()
        equal(r.data, [{"label": "one"}, {"label": "two"}])

    def insert():
        r = users().insert({"email": "py@x.io", "name": "Py"}).execute()
        equal((len(r.data), r.data[0]["email"], r.data[0]["status"]), (1, "py@x.io", "active"))
        r = users().insert([{"email": "py2@x.io", "name": "P2"}, {"email": "py3@x.io"}]).execute()
        equal(sorted(row["email"] for row in r.data), ["py2@x.io", "py3@x.io"])
        r = users().insert({"email": "py4@x.io"}, returning="minimal").execute()
        equal(r.data, [])

    def upsert():
        r = users().upsert({"email": "ada@example.com", "name": "Ada U"}, on_conflict="email").execute()
        equal([(row["email"], row["name"]) for row in r.data], [("ada@example.com", "Ada U")])
        r = users().upsert(
            [{"email": "bob@example.com", "name": "nope"}, {"email": "py5@x.io"}],
            on_conflict="email",
            ignore_duplicates=True,
        ).execute()
        equal([row["email"] for row in r.data], ["py5@x.io"])
        equal(users().select("name").eq("id", 2).single().execute().data, {"name": "Bob"})

    def update():
        r = users().update({"status": "vip"}).eq("id", 2).execute()
        equal([(row["id"], row["status"]) for row in r.data], [(2, "vip")])
        raises(lambda: users().update({"status": "all"}).execute(), "21000")

    def delete():
        r = users().delete().like("email", "py%").execute()
        equal(len(r.data), 5)
        equal(users().select("id", count="exact").execute().count, 5)
        raises(lambda: users().delete().execute(), "21000")

    def errors():
        raises(lambda: users().select("nope").execute(), "42703")
        raises(lambda: client.from_("nope").select("*").execute(), "42P01")
        raises(lambda: users().insert({"email": "ada@example.com"}).execute(), "23505")
        raises(lambda: users().select("*").eq("age", "old").execute(), "22P02")

    for name, fn in [
        ("select with filters, order and limit", select_filter_order_limit),
        ("in, is, ilike, or, not, neq, lt", operators),
        ("aliases and nulls first", aliases_and_nulls_order),
        ("count=exact and range", count_exact),
        ("HEAD with count=exact", head_count),
        ("single and maybe_single", single_row),
        ("contains on arrays and jsonb", arrays_and_json),
        ("another schema", other_schema),
        ("insert one, many and minimal", insert),
        ("upsert merge and ignore", upsert),
        ("update with and without a filter", update),
        ("delete with and without a filter", delete),
        ("errors carry PostgREST codes", errors),
    ]:
        check(name, fn)
    if failures:
        print(f"{len(failures)} check(s) failed: {', '.join(failures)}")
        return 1
    print("all checks ok")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
