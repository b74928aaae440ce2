-- An outbox row may carry several Kafka messages of one topic and key
-- (decision 0075): `batch` true means `payload` is a JSON array whose
-- elements the relay publishes in order, each as its own message, and
-- the row is deleted once every one is acknowledged. gw_audit_seal writes
-- one such row per sealing round instead of one row per entry: a row costs
-- an insert, a lease update and a delete, three times per run before.
-- Relays of earlier versions lease through gw_outbox_lease, which leaves
-- batch rows alone, so a mixed-version rolling upgrade never publishes an
-- array as one message.
ALTER TABLE gw_outbox ADD COLUMN batch boolean NOT NULL DEFAULT false;
