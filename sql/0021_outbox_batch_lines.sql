-- A batch row (0019) may carry its messages as text, one per line, in
-- `lines`, instead of as a jsonb array in `payload` (then 'null'). The
-- audit sealer writes its rounds this way: parsing a round's 2,000 messages
-- into jsonb was two thirds of the sealer's time, ~20 us an entry, for a
-- value that only ever goes back out as text (bench/README.md, "Issue 15,
-- part 10"). A message never holds a raw newline: the sealer builds it from
-- JSON text, in which a newline is escaped. gw_outbox_lease_parts reads
-- both forms, so rows written before the upgrade still go out.
ALTER TABLE gw_outbox ADD COLUMN lines text;
