-- Incoming webhooks (POST /v1/hooks/{name}, broker/hooks.c): every delivery
-- id a hook accepted, kept for twice the hook's timestamp tolerance so a
-- captured request replayed within the window is refused (409
-- delivery_replayed); an older one is refused for its timestamp. Rows past
-- their window are deleted by gw_hook_delivery itself.
CREATE TABLE gw_hook_deliveries (
    hook text NOT NULL,
    delivery_id text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    forget_after timestamptz NOT NULL,
    PRIMARY KEY (hook, delivery_id)
);
CREATE INDEX gw_hook_deliveries_forget ON gw_hook_deliveries (forget_after);
