/* Removed once the broker has sources. */
typedef int gw_broker_placeholder;
