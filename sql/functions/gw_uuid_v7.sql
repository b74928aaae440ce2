-- A time-ordered (version 7, RFC 9562) UUID for the instant `at`: 48 bits of
-- Unix milliseconds, 12 bits of the millisecond's fraction in 1/4096ths,
-- 62 random bits (taken from a version 4 UUID, whose variant bits are the
-- same). The same layout as gw_uuid_v7 in lib/core/crypto.c, which makes the
-- run ids of requests; this one makes the runs PostgreSQL starts itself
-- (workflow children, teardowns, reconciles, drift checks).
-- docs/decisions/0079-time-ordered-run-ids.md says why.
-- An instant the 48 bits cannot hold (before 1970, after the year 10889) is
-- refused rather than wrapped: such an id would sort among the wrong ones.
-- The microseconds are rounded, not floored: before PostgreSQL 14 extract()
-- gives a double, and floor() of its product could lose one.
CREATE OR REPLACE FUNCTION gw_uuid_v7(at timestamptz DEFAULT clock_timestamp())
RETURNS uuid LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
DECLARE
    us bigint := round(extract(epoch FROM at) * 1000000)::bigint;
BEGIN
    IF us < 0 OR us / 1000 >= 281474976710656 THEN
        RAISE EXCEPTION 'gw_uuid_v7: % is outside what a version 7 UUID can hold', at
            USING ERRCODE = '22008'; -- datetime_field_overflow
    END IF;
    RETURN encode(substring(int8send(us / 1000) FROM 3 FOR 6)
                  || int2send((28672 + (us % 1000) * 4096 / 1000)::smallint)
                  || substring(uuid_send(gen_random_uuid()) FROM 9 FOR 8), 'hex')::uuid;
END $$;
