-- An outbox row may carry several Kafka messages of one topic and key
-- (decision 0075): `batch` true means `payload` is a JSON array whose
-- elements the relay publishes in order, each as its own message, and
-- the row is deleted once every one is acknowledged. gw_audit_seal writes
-- one such row per sealing round instead of one row per entry: a row costs
-- an insert, a lease update and a delete, three times per run before.
-- Relays of earlier versions lease through gw_outbox_lease, which leaves
-- batch rows alone, so a mixed-version rolling upgrade never publishes an
-- array as one message.
-- A batch's array is never empty (it would be leased, send nothing and
-- never be deleted): its writers insert one only with an element. Not a
-- CHECK: every lease UPDATE would detoast the whole array to re-check it.
ALTER TABLE gw_outbox ADD COLUMN batch boolean NOT NULL DEFAULT false;
-- The lease finds its (at most 2) batch rows through this, not by walking
-- the whole outbox in id order past the plain rows.
CREATE INDEX gw_outbox_batch_rows ON gw_outbox (id) WHERE batch;
