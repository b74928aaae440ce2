import { useEffect, useMemo, useRef, useState } from 'react';
import { useVirtualizer } from '@tanstack/react-virtual';
import { AnsiUp } from 'ansi_up';
import type { LogLine } from '../api';
import { follow, type EventSourceFactory } from '../sse';

export interface LogState {
  lines: LogLine[];
  state: 'connecting' | 'open' | 'reconnecting' | 'closed';
  end?: { status: string; reason?: string };
}

/** Follows /v1/runs/{id}/logs?follow=true; the lines in `pos` order, each
 *  once, across reconnects (sse.ts). */
export function useRunLogs(runId: string, factory?: EventSourceFactory): LogState {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [state, setState] = useState<LogState['state']>('connecting');
  const [end, setEnd] = useState<LogState['end']>();
  useEffect(() => {
    setLines([]);
    setEnd(undefined);
    setState('connecting');
    let buf: LogLine[] = [];
    let raf: ReturnType<typeof setTimeout> | null = null;
    const flush = () => {
      raf = null;
      const add = buf;
      buf = [];
      setLines((prev) => prev.concat(add));
    };
    const f = follow({
      url: '/v1/runs/' + encodeURIComponent(runId) + '/logs?follow=true',
      events: ['log', 'end'],
      endEvent: 'end',
      dedupe: true,
      factory,
      onState: (s) => setState(s),
      onEvent: (name, data, id) => {
        if (name === 'log') {
          const d = data as Omit<LogLine, 'pos'>;
          buf.push({ ...d, pos: id ?? 0 });
          // Batch a burst of lines into one render.
          if (!raf) raf = setTimeout(flush, 30);
        } else if (name === 'end') {
          if (raf) {
            clearTimeout(raf);
            flush();
          }
          setEnd(data as LogState['end']);
        }
      },
    });
    return () => {
      f.close();
      if (raf) clearTimeout(raf);
    };
  }, [runId, factory]);
  return { lines, state, end };
}

const ROW = 20;

export function LogView({ lines, state }: { lines: LogLine[]; state: LogState['state'] }) {
  const parent = useRef<HTMLDivElement>(null);
  const [stick, setStick] = useState(true);
  const ansi = useMemo(() => {
    const a = new AnsiUp();
    a.use_classes = true;
    a.escape_html = true;
    return a;
  }, []);
  const html = useMemo(() => new Map<number, string>(), []);
  const render = (l: LogLine) => {
    let h = html.get(l.pos);
    if (h === undefined) {
      h = ansi.ansi_to_html(l.line);
      html.set(l.pos, h);
    }
    return h;
  };
  const v = useVirtualizer({
    count: lines.length,
    getScrollElement: () => parent.current,
    estimateSize: () => ROW,
    overscan: 30,
    // The .logs box's size before it is measured (and where there is no layout).
    initialRect: { width: 800, height: 384 },
  });
  useEffect(() => {
    if (stick && lines.length) v.scrollToIndex(lines.length - 1, { align: 'end' });
  }, [lines.length, stick, v]);
  return (
    <div>
      <p className="muted" role="status" aria-live="polite">
        {lines.length} line{lines.length === 1 ? '' : 's'}
        {state === 'reconnecting' ? ' · connection lost, resuming…' : state === 'open' ? ' · live' : state === 'closed' ? ' · complete' : ''}
        <label className="stick">
          <input type="checkbox" checked={stick} onChange={(e) => setStick(e.target.checked)} /> follow the end
        </label>
      </p>
      <div
        ref={parent}
        className="logs"
        tabIndex={0}
        role="log"
        aria-label="Run log"
        data-testid="logs"
        data-lines={lines.length}
        onWheel={(e) => {
          if (e.deltaY < 0) setStick(false);
        }}
      >
        <div style={{ height: v.getTotalSize(), position: 'relative' }}>
          {v.getVirtualItems().map((item) => {
            const l = lines[item.index];
            return (
              <div
                key={l.pos}
                className={'logline ' + l.stream}
                data-pos={l.pos}
                style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW, transform: `translateY(${item.start}px)` }}
              >
                <span className="lno" aria-hidden="true">
                  {item.index + 1}
                </span>
                <span dangerouslySetInnerHTML={{ __html: render(l) }} />
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}
