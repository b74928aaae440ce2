import { describe, expect, it, vi } from 'vitest';
import { follow } from './sse';

class FakeES {
  static all: FakeES[] = [];
  url: string;
  readyState = 0;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  listeners: Record<string, ((e: MessageEvent) => void)[]> = {};
  closed = false;
  constructor(url: string) {
    this.url = url;
    FakeES.all.push(this);
  }
  addEventListener(name: string, fn: (e: MessageEvent) => void) {
    (this.listeners[name] = this.listeners[name] ?? []).push(fn);
  }
  close() {
    this.closed = true;
    this.readyState = 2;
  }
  emit(name: string, id: number, data: unknown) {
    for (const fn of this.listeners[name] ?? []) fn({ lastEventId: String(id), data: JSON.stringify(data) } as MessageEvent);
  }
  fail() {
    this.readyState = 2;
    this.onerror?.();
  }
}

describe('follow', () => {
  it('resumes after the last id with no duplicate and closes on end', () => {
    vi.useFakeTimers();
    FakeES.all = [];
    const got: number[] = [];
    const states: string[] = [];
    const f = follow({
      url: '/v1/runs/x/logs?follow=true',
      events: ['log', 'end'],
      endEvent: 'end',
      dedupe: true,
      retryMs: 10,
      factory: (u) => new FakeES(u) as unknown as EventSource,
      onEvent: (n, _d, id) => n === 'log' && got.push(id!),
      onState: (s) => states.push(s),
    });
    const a = FakeES.all[0];
    expect(a.url).toBe('/v1/runs/x/logs?follow=true');
    a.emit('log', 1, { line: 'a' });
    a.emit('log', 2, { line: 'b' });
    a.fail(); // broker restarted and answered 503: the browser gave up
    expect(states).toContain('reconnecting');
    vi.advanceTimersByTime(20);
    const b = FakeES.all[1];
    expect(b.url).toBe('/v1/runs/x/logs?follow=true&after=2');
    b.emit('log', 2, { line: 'b' }); // a replay is dropped
    b.emit('log', 3, { line: 'c' });
    b.emit('end', 3, { status: 'succeeded' });
    expect(got).toEqual([1, 2, 3]);
    expect(b.closed).toBe(true);
    expect(f.lastId()).toBe(3);
    vi.useRealTimers();
  });
});
