/* Removed once the worker has sources. */
typedef int gw_worker_placeholder;
