// Server-Sent Events that survive a dropped connection (a broker restart, a
// proxy timeout). While the browser's EventSource reconnects by itself it sends
// Last-Event-ID; when it gives up (the broker answered 502/503 while starting)
// we open a new one with `after=<last id>`. Either way the broker resumes after
// the last id we saw, and ids we already have are dropped here too, so the
// view neither duplicates nor loses a line.

export type EventSourceFactory = (url: string) => EventSource;

export interface FollowOptions {
  url: string; // without after=
  events: string[]; // event names to listen to
  onEvent: (name: string, data: unknown, id: number | null) => void;
  onState?: (state: 'open' | 'reconnecting' | 'closed') => void;
  /** Event name after which the stream is over (logs: "end"). */
  endEvent?: string;
  /** Ids at or below this were already seen (resume point). */
  after?: number;
  /** Drop events whose id is not above the last one (logs: yes; /v1/events ids are per connection maxima). */
  dedupe?: boolean;
  factory?: EventSourceFactory;
  retryMs?: number;
}

export interface Follower {
  close(): void;
  lastId(): number;
}

export function follow(o: FollowOptions): Follower {
  const factory = o.factory ?? ((u: string) => new EventSource(u, { withCredentials: true }));
  let last = o.after ?? -1;
  let es: EventSource | null = null;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let failures = 0;

  const urlWithAfter = () => {
    if (last < 0) return o.url;
    return o.url + (o.url.includes('?') ? '&' : '?') + 'after=' + last;
  };

  const open = () => {
    if (closed) return;
    const src = factory(urlWithAfter());
    es = src;
    src.onopen = () => {
      failures = 0;
      o.onState?.('open');
    };
    src.onerror = () => {
      if (closed || es !== src) return;
      if (src.readyState === 2 /* CLOSED */) {
        // The browser gave up: open anew from the last id we hold.
        src.close();
        failures++;
        o.onState?.('reconnecting');
        const delay = Math.min(o.retryMs ?? 1000 * Math.min(failures, 5), 5000);
        timer = setTimeout(open, delay);
      } else {
        o.onState?.('reconnecting');
      }
    };
    for (const name of o.events) {
      src.addEventListener(name, (ev) => {
        if (es !== src) return;
        const me = ev as MessageEvent;
        const id = me.lastEventId !== '' && me.lastEventId !== undefined ? Number(me.lastEventId) : null;
        if (id !== null && Number.isFinite(id)) {
          if (o.dedupe && id <= last && name !== o.endEvent) return;
          if (id > last) last = id;
        }
        let data: unknown = me.data;
        try {
          data = JSON.parse(me.data);
        } catch {
          /* keep text */
        }
        o.onEvent(name, data, id);
        if (o.endEvent && name === o.endEvent) {
          closed = true;
          src.close();
          o.onState?.('closed');
        }
      });
    }
  };
  open();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      es?.close();
    },
    lastId: () => last,
  };
}
