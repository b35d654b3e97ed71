"""How a plain pg_dump is cut for a parallel restore: COPY pieces are whole COPY statements cut at row ends,
post-data entries are classed with the tables they lock, session settings travel with every unit, and a
meta-command the cutter does not know makes the rest serial."""

from __future__ import annotations

from providers.databases.pg_parallel import (
    DataBegin,
    DataBytes,
    DataEnd,
    Event,
    PlainDumpSplitter,
    Post,
    Serial,
)

DUMP = b"""--
-- PostgreSQL database dump
--

\\restrict abc123

SET client_encoding = 'UTF8';
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: t; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.t (id integer, v text);

--
-- Data for Name: t; Type: TABLE DATA; Schema: public; Owner: -
--

COPY public.t (id, v) FROM stdin;
""" + b"".join(b"%d\trow\\\\%d\\n\n" % (i, i) for i in range(200)) + b"""\\.


--
-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.t
    ADD CONSTRAINT t_pkey PRIMARY KEY (id);


--
-- Name: u u_t_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.u
    ADD CONSTRAINT u_t_fkey FOREIGN KEY (t) REFERENCES public.t(id);


--
-- Name: t trg; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER trg AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();

\\unrestrict abc123
"""


def _split(dump: bytes, piece: int, feed: int) -> list[Event]:
    s = PlainDumpSplitter(piece)
    out: list[Event] = []
    for i in range(0, len(dump), feed):
        out += s.feed(dump[i:i + feed])
    return out + s.flush()


def _units(events: list[Event]) -> list[bytes]:
    units, cur = [], None
    for ev in events:
        if isinstance(ev, DataBegin):
            cur = [ev.prefix]
        elif isinstance(ev, DataBytes) and cur is not None:
            cur.append(ev.data)
        elif isinstance(ev, DataEnd) and cur is not None:
            units.append(b"".join(cur))
            cur = None
    return units


def test_copy_is_cut_into_whole_copy_statements_at_row_ends_whatever_the_feed_size() -> None:
    for feed in (1, 7, 100, len(DUMP)):
        units = _units(_split(DUMP, 600, feed))
        assert len(units) > 3
        rows = []
        for unit in units:
            assert b"SET client_encoding = 'UTF8';\n" in unit and b"set_config('search_path', ''" in unit
            body = unit.split(b"COPY public.t (id, v) FROM stdin;\n", 1)[1]
            assert body.endswith(b"\\.\n\n\n--\n") or body.endswith(b"\\.\n")
            rows += body.split(b"\\.\n", 1)[0].splitlines()
        assert rows == [b"%d\trow\\\\%d\\n" % (i, i) for i in range(200)]


def test_post_data_is_classed_with_the_tables_it_locks() -> None:
    posts = [ev for ev in _split(DUMP, 1 << 20, 4096) if isinstance(ev, Post)]
    assert [(p.cls, sorted(p.locks)) for p in posts] == [
        ("index", ["public.t"]), ("fk", ["public.t", "public.u"]), ("serial", [])]


def test_pg_dumps_restrict_pair_is_dropped_and_pre_data_is_serial() -> None:
    events = _split(DUMP, 1 << 20, 4096)
    text = b"".join(ev.data for ev in events if isinstance(ev, Serial | DataBytes))
    assert b"restrict" not in text
    first_data = next(i for i, ev in enumerate(events) if isinstance(ev, DataBegin))
    assert all(isinstance(ev, Serial) for ev in events[:first_data])
    assert b"CREATE TABLE public.t" in b"".join(ev.data for ev in events[:first_data] if isinstance(ev, Serial))


def test_a_second_restrict_line_from_a_stream_filter_is_dropped_too() -> None:
    events = _split(b"\\restrict fromfilter\n" + DUMP + b"\\unrestrict fromfilter\n", 1 << 20, 4096)
    text = b"".join(ev.data for ev in events if isinstance(ev, Serial | DataBytes))
    assert b"restrict" not in text and any(isinstance(ev, DataBegin) for ev in events)


def test_an_unknown_meta_command_makes_the_rest_serial() -> None:
    dump = DUMP.replace(b"CREATE TABLE public.t", b"\\connect other\nCREATE TABLE public.t")
    events = _split(dump, 600, 4096)
    assert not [ev for ev in events if isinstance(ev, DataBegin | Post)]
    text = b"".join(ev.data for ev in events if isinstance(ev, Serial))
    assert b"\\connect other\n" in text and b"ADD CONSTRAINT u_t_fkey" in text


def test_a_statement_not_recognised_as_index_or_constraint_is_serial() -> None:
    dump = DUMP.replace(b"ADD CONSTRAINT t_pkey PRIMARY KEY (id);", b"ADD CONSTRAINT t_pkey PRIMARY KEY (id);\nDROP TABLE x;")
    posts = [ev for ev in _split(dump, 1 << 20, 4096) if isinstance(ev, Post)]
    assert posts[0].cls == "serial"
