/**
 * A Server-Sent Events reader over fetch (Node 20's undici): one request,
 * events handed to a callback as they are parsed. Reconnection is the
 * caller's business (it knows what to resume from: Last-Event-ID for a log
 * stream, a full resync for resource events).
 */

/** One event as the SSE wire format defines it. */
export interface SseEvent {
  /** The `event:` field, `message` when absent. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The `id:` field of this event, when it had one. */
  id?: string;
}

/** Parses a text/event-stream incrementally (WHATWG HTML §9.2.6). */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id: string | undefined;
  private sawCr = false;

  constructor(private readonly onEvent: (e: SseEvent) => void) {}

  /** Feeds a decoded chunk; complete events are dispatched at once. */
  push(chunk: string): void {
    let text = chunk;
    if (this.sawCr && text.startsWith('\n')) text = text.slice(1);
    this.sawCr = false;
    this.buffer += text;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) return;
      if (m[0] === '\r' && m.index === this.buffer.length - 1) {
        /* A lone CR at the end may be the first half of a CRLF. */
        this.sawCr = true;
      }
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) {
        this.onEvent({
          event: this.event || 'message',
          data: this.data.join('\n'),
          ...(this.id !== undefined ? { id: this.id } : {}),
        });
      }
      this.event = '';
      this.data = [];
      this.id = undefined;
      return;
    }
    if (line.startsWith(':')) return; /* a comment: keepalive */
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

/** Why a stream ended. */
export type SseEnd = 'closed' | 'idle' | 'aborted';

/**
 * Reads the body of `res` as an event stream until it closes, `signal`
 * aborts, or nothing (not even a keepalive comment) arrives for
 * `idleTimeoutMs`. Resolves with the reason; rejects only on a network
 * error, which the caller treats like a close.
 */
export async function readSse(
  res: Response,
  onEvent: (e: SseEvent) => void,
  opts: { signal?: AbortSignal; idleTimeoutMs?: number } = {},
): Promise<SseEnd> {
  if (!res.body) return 'closed';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser(onEvent);
  let timer: NodeJS.Timeout | undefined;
  let ended: SseEnd | undefined;
  const stop = (why: SseEnd) => {
    if (ended) return;
    ended = why;
    reader.cancel().catch(() => undefined);
  };
  const arm = () => {
    if (timer) clearTimeout(timer);
    if (opts.idleTimeoutMs) timer = setTimeout(() => stop('idle'), opts.idleTimeoutMs);
  };
  const onAbort = () => stop('aborted');
  if (opts.signal?.aborted) return 'aborted';
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  arm();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (ended) return ended;
      if (done) return 'closed';
      arm();
      parser.push(decoder.decode(value, { stream: true }));
    }
  } catch (e) {
    if (ended) return ended;
    throw e;
  } finally {
    if (timer) clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
